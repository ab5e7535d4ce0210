# The BEAM side of the KV benchmark: the KV application of Elixir's "Mix and OTP" guide (registry,
# Agent buckets, a router through Task.Supervisor, the text server), condensed into one script.
#   elixir --name NAME --cookie bench bench/kv_bench.exs PORT "a-m=foo@127.0.0.1" "n-z=bar@127.0.0.1"
# Prints "ready" once it serves. The protocol and replies are the ones `hypha kv` serves.

defmodule KV.Bucket do
  use Agent, restart: :temporary
  def start_link(_), do: Agent.start_link(fn -> %{} end)
  def get(b, k), do: Agent.get(b, &Map.get(&1, k))
  def put(b, k, v), do: Agent.update(b, &Map.put(&1, k, v))
  def delete(b, k), do: Agent.get_and_update(b, &Map.pop(&1, k))
end

defmodule KV.Registry do
  use GenServer
  def start_link(opts), do: GenServer.start_link(__MODULE__, :ok, opts)
  def lookup(name) do
    case :ets.lookup(__MODULE__, name) do
      [{^name, pid}] -> {:ok, pid}
      [] -> :error
    end
  end
  def create(name), do: GenServer.call(__MODULE__, {:create, name})
  def init(:ok) do
    :ets.new(__MODULE__, [:named_table, read_concurrency: true])
    {:ok, {%{}, %{}}}
  end
  def handle_call({:create, name}, _from, {names, refs}) do
    case lookup(name) do
      {:ok, pid} -> {:reply, pid, {names, refs}}
      :error ->
        {:ok, pid} = DynamicSupervisor.start_child(KV.BucketSupervisor, KV.Bucket)
        ref = Process.monitor(pid)
        :ets.insert(__MODULE__, {name, pid})
        {:reply, pid, {Map.put(names, name, pid), Map.put(refs, ref, name)}}
    end
  end
  def handle_info({:DOWN, ref, :process, _pid, _reason}, {names, refs}) do
    {name, refs} = Map.pop(refs, ref)
    :ets.delete(__MODULE__, name)
    {:noreply, {Map.delete(names, name), refs}}
  end
end

defmodule KV.Router do
  def table, do: :persistent_term.get(:kv_table)
  def route(bucket, mod, fun, args) do
    first = :binary.first(bucket)
    entry = Enum.find(table(), fn {enum, _node} -> first in enum end) ||
              raise "could not find entry for #{inspect(bucket)} in table #{inspect(table())}"
    if elem(entry, 1) == node() do
      apply(mod, fun, args)
    else
      {KV.RouterTasks, elem(entry, 1)}
      |> Task.Supervisor.async(KV.Router, :route, [bucket, mod, fun, args])
      |> Task.await()
    end
  end
end

defmodule KV.Ops do
  def create(b), do: (KV.Registry.create(b); :ok)
  def get(b, k), do: with({:ok, p} <- KV.Registry.lookup(b), do: {:ok, KV.Bucket.get(p, k)})
  def put(b, k, v), do: with({:ok, p} <- KV.Registry.lookup(b), do: KV.Bucket.put(p, k, v))
  def delete(b, k), do: with({:ok, p} <- KV.Registry.lookup(b), do: (KV.Bucket.delete(p, k); :ok))
end

defmodule KVServer do
  def accept(port) do
    {:ok, socket} = :gen_tcp.listen(port, [:binary, packet: :line, active: false, reuseaddr: true])
    IO.puts("ready")
    loop(socket)
  end
  defp loop(socket) do
    {:ok, client} = :gen_tcp.accept(socket)
    {:ok, pid} = Task.Supervisor.start_child(KVServer.TaskSupervisor, fn -> serve(client) end)
    :ok = :gen_tcp.controlling_process(client, pid)
    loop(socket)
  end
  defp serve(socket) do
    case :gen_tcp.recv(socket, 0) do
      {:ok, line} ->
        :gen_tcp.send(socket, run(String.split(line)))
        serve(socket)
      {:error, _} -> :ok
    end
  end
  defp run(["CREATE", b]), do: reply(KV.Router.route(b, KV.Ops, :create, [b]), :create)
  defp run(["GET", b, k]), do: reply(KV.Router.route(b, KV.Ops, :get, [b, k]), :get)
  defp run(["PUT", b, k, v]), do: reply(KV.Router.route(b, KV.Ops, :put, [b, k, v]), :put)
  defp run(["DELETE", b, k]), do: reply(KV.Router.route(b, KV.Ops, :delete, [b, k]), :delete)
  defp run(_), do: "UNKNOWN COMMAND\r\n"
  defp reply(:error, _), do: "NOT FOUND\r\n"
  defp reply({:ok, v}, :get), do: "#{v}\r\nOK\r\n"
  defp reply(_, _), do: "OK\r\n"
end

[port | entries] = System.argv()
table =
  for e <- entries do
    [range, node] = String.split(e, "=")
    [a, z] = case String.split(range, "-") do
      [x] -> [x, x]
      [x, y] -> [x, y]
    end
    {:binary.first(a)..:binary.first(z), String.to_atom(node)}
  end
:persistent_term.put(:kv_table, table)
children = [
  {DynamicSupervisor, name: KV.BucketSupervisor, strategy: :one_for_one},
  {KV.Registry, name: KV.Registry},
  {Task.Supervisor, name: KV.RouterTasks},
  {Task.Supervisor, name: KVServer.TaskSupervisor}
]
{:ok, _} = Supervisor.start_link(children, strategy: :one_for_one)
KVServer.accept(String.to_integer(port))
