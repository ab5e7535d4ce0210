# Cluster benchmark, BEAM side: the same roles and messages as bench/cluster_bench.cpp.
#   elixir --name N --cookie bench bench/cluster_bench.exs serve
#   elixir --name N --cookie bench bench/cluster_bench.exs pg NODE LABEL
#   elixir --name N --cookie bench bench/cluster_bench.exs pubsub NODE1 NODE2 LABEL
#   elixir --name N --cookie bench bench/cluster_bench.exs registry LABEL NODE...
#   elixir --name N --cookie bench bench/cluster_bench.exs form STRATEGY NODE...
# registry: OTP's global (what BEAM ships for cluster-wide names): 10,000 names registered from
# this node, one process each, until every NODE lists them all.
# form: what a BEAM cluster does to form (libcluster's Epmd and LocalEpmd strategies, retried):
# static connects to the NODEs not yet connected every 200 ms, epmd to the nodes EPMD on
# 127.0.0.1 lists (with the NODEs' prefix) every 500 ms; global's connect_all meshes the rest.
# Process groups are OTP's pg (scope pg). Pub/sub is what Phoenix.PubSub 2.x runs with its default
# PG2 adapter (Phoenix is not packaged in Debian; this follows its code path): the adapter process
# joined to its group in the Phoenix.PubSub pg scope, broadcast sending {forward_to_local, ...} to
# the other nodes' adapters, then dispatching to the local subscribers in the caller, which is an
# ETS lookup of the topic and a send to each entry, as Registry.dispatch does. The subscribers are
# in a duplicate_bag ETS table rather than a Registry: Registry.register links every subscriber to
# its partition process, and that costs more the more subscribers a node has (OTP 25: 20,000
# registrations from 20,000 processes 0.13 s, 80,000 1.27 s), which would make 333,000 per node
# take minutes to set up. Dispatch, what is measured, is the same lookup and sends.
defmodule Bench.PubSub do
  @adapter Bench.PubSub.Adapter
  def start do
    {:ok, _} = :pg.start(:pg)
    {:ok, _} = :pg.start(Phoenix.PubSub)
    :ets.new(__MODULE__, [:duplicate_bag, :public, :named_table, read_concurrency: true, write_concurrency: true])
    parent = self()
    spawn(fn ->
      Process.register(self(), @adapter)
      :ok = :pg.join(Phoenix.PubSub, @adapter, self())
      send(parent, :adapter_up)
      adapter_loop()
    end)
    receive do: (:adapter_up -> :ok)
  end

  defp adapter_loop do
    receive do
      {:forward_to_local, topic, message, _dispatcher} -> dispatch(topic, message)
      _ -> :ok
    end
    adapter_loop()
  end

  def broadcast(topic, message) do
    for pid <- :pg.get_members(Phoenix.PubSub, @adapter), node(pid) != node() do
      send(pid, {:forward_to_local, topic, message, Phoenix.PubSub})
    end
    dispatch(topic, message)
  end

  def dispatch(topic, message) do
    for {_, {pid, _}} <- :ets.lookup(__MODULE__, topic), do: send(pid, message)
    :ok
  end

  def subscribe(topic), do: :ets.insert(__MODULE__, {topic, {self(), nil}})

  def adapters, do: :pg.get_members(Phoenix.PubSub, @adapter)
end

defmodule Bench.Ctl do
  def start do
    pid = spawn(&loop/0)
    Process.register(pid, :bench_ctl)
  end

  defp loop do
    receive do
      {:subscribe, from, topic, n, every} -> subscribers(topic, n, every, from)
      {:pg_watch, from, group, target} -> spawn(fn -> watch(group, target, from) end)
      {:reg_watch, from, last} -> spawn(fn -> reg_watch(last, from) end)
    end
    loop()
  end

  defp subscribers(topic, n, every, report) do
    # Counted in atomics, not by a message from each: a mailbox of 333,000 replies would be
    # copied by every garbage collection of the process that spawns them.
    count = :atomics.new(1, [])
    ready = :atomics.new(1, [])
    for _ <- 1..n do
      spawn(fn ->
        true = Bench.PubSub.subscribe(topic)
        if :atomics.add_get(ready, 1, 1) == n, do: send(report, {:subscribed, node()})
        count_loop(count, every, report)
      end)
    end
  end

  defp count_loop(count, every, report) do
    receive do
      _ -> if rem(:atomics.add_get(count, 1, 1), every) == 0, do: send(report, {:done, node()})
    end
    count_loop(count, every, report)
  end

  # The last name of a round (they are registered in order).
  defp reg_watch(last, report) do
    send(report, {:watching, node()})
    reg_poll(last, report)
  end

  defp reg_poll(last, report) do
    if :global.whereis_name(last) != :undefined,
      do: send(report, {:seen, node()}),
      else: (Process.sleep(1); reg_poll(last, report))
  end

  defp watch(group, target, report) do
    {ref, members} = :pg.monitor(:pg, group)
    send(report, {:watching, node()})
    watch_loop(ref, length(members), target, report)
  end

  defp watch_loop(_ref, have, target, report) when have >= target, do: send(report, {:seen, node()})
  defp watch_loop(ref, have, target, report) do
    receive do
      {^ref, :join, _, pids} -> watch_loop(ref, have + length(pids), target, report)
      {^ref, :leave, _, pids} -> watch_loop(ref, have - length(pids), target, report)
    end
  end
end

defmodule Bench.Main do
  def metric(label, name, value, unit),
    do: IO.puts("side=#{label} metric=#{name} value=#{:erlang.float_to_binary(value * 1.0, decimals: 3)} unit=#{unit}")

  def ms_since(t0), do: (System.monotonic_time(:microsecond) - t0) / 1000

  def await_all(tag, n), do: for(_ <- 1..n, do: receive(do: ({^tag, _} -> :ok), after: (120_000 -> halt_stuck(tag))))
  defp halt_stuck(tag), do: (IO.puts(:stderr, "cluster_bench: no #{tag} within 2 minutes"); System.halt(4))

  def run(["serve"]) do
    Bench.PubSub.start()
    Bench.Ctl.start()
    IO.puts("ready")
    Process.sleep(:infinity)
  end

  def run(["registry", label | others]) do
    nodes = Enum.map(others, &String.to_atom/1)
    for n <- nodes, do: true = Node.connect(n)
    :global.sync()
    n = 10_000
    for round <- 0..1 do
      holders = for _ <- 1..n, do: spawn(fn -> receive do: (_ -> :ok) end)
      for nd <- nodes, do: send({:bench_ctl, nd}, {:reg_watch, self(), {:bench, round, n - 1}})
      await_all(:watching, length(nodes))
      t0 = System.monotonic_time(:microsecond)
      holders |> Enum.with_index() |> Enum.each(fn {p, i} -> :yes = :global.register_name({:bench, round, i}, p) end)
      local = ms_since(t0)
      await_all(:seen, length(nodes))
      metric(label, "registry_10k_visible_on_4", ms_since(t0), "ms")
      metric(label, "registry_registrations_per_s", n / (local / 1000), "ops/s")
    end
  end

  def run(["pg", node, label]) do
    Bench.PubSub.start()
    to = String.to_atom(node)
    true = Node.connect(to)
    n = 10_000
    members = for _ <- 1..n, do: spawn(fn -> receive do: (_ -> :ok) end)
    for round <- 0..2 do
      group = {:joins, round}
      send({:bench_ctl, to}, {:pg_watch, self(), group, n})
      await_all(:watching, 1)
      t0 = System.monotonic_time(:microsecond)
      for p <- members, do: :ok = :pg.join(:pg, group, p)
      local = ms_since(t0)
      await_all(:seen, 1)
      metric(label, "pg_10k_joins_visible", ms_since(t0), "ms")
      metric(label, "pg_10k_joins_local", local, "ms")
    end
    pairs = 20_000
    [m | _] = members
    for round <- 0..1 do
      group = {:churn, round}
      marker = {:churn_done, round}
      send({:bench_ctl, to}, {:pg_watch, self(), marker, 1})
      await_all(:watching, 1)
      t0 = System.monotonic_time(:microsecond)
      for _ <- 1..pairs do
        :ok = :pg.join(:pg, group, m)
        :ok = :pg.leave(:pg, group, m)
      end
      :ok = :pg.join(:pg, marker, m)
      await_all(:seen, 1)
      metric(label, "pg_churn_per_s", 2 * pairs / (ms_since(t0) / 1000), "ops/s")
    end
  end

  def run(["pubsub", b, c, label]) do
    Bench.PubSub.start()
    Bench.Ctl.start()
    nodes = [node(), String.to_atom(b), String.to_atom(c)]
    for nd <- tl(nodes), do: true = Node.connect(nd)
    wait_adapters(length(nodes))
    subscribe = fn where, topic, n, every ->
      for nd <- where, do: send({:bench_ctl, nd}, {:subscribe, self(), topic, n, every})
      await_all(:subscribed, length(where))
    end
    for {total, name} <- [{100_000, "100k"}, {1_000_000, "1m"}] do
      topic = "fanout_" <> name
      per_node = div(total, 3)
      subscribe.(nodes, topic, per_node, per_node)
      for round <- 0..2 do
        t0 = System.monotonic_time(:microsecond)
        Bench.PubSub.broadcast(topic, {:tick, round})
        await_all(:done, 3)
        metric(label, "pubsub_fanout_" <> name, ms_since(t0), "ms")
      end
    end
    msgs = 20_000
    others = tl(nodes)
    subscribe.(others, "rate", 500, 500 * msgs)
    for _ <- 0..1 do
      t0 = System.monotonic_time(:microsecond)
      for i <- 1..msgs, do: Bench.PubSub.broadcast("rate", {:tick, i})
      await_all(:done, 2)
      metric(label, "pubsub_broadcasts_per_s_1k", msgs / (ms_since(t0) / 1000), "msgs/s")
    end
  end

  def run(["form", strategy | all]) do
    IO.puts("up #{System.os_time(:millisecond)}")
    all = Enum.map(all, &String.to_atom/1) -- [node()]
    form(strategy, all, nil)
    IO.puts("mesh #{System.os_time(:millisecond)}")
    Process.sleep(:infinity)
  end

  defp form(strategy, all, next_try) do
    now = System.monotonic_time(:millisecond)
    next_try =
      if next_try == nil or now >= next_try do  # monotonic time may be negative
        for n <- candidates(strategy, all) -- [node() | Node.list()], do: Node.connect(n)
        now + if(strategy == "static", do: 200, else: 500)
      else
        next_try
      end
    unless Enum.all?(all, &(&1 in Node.list())) do
      Process.sleep(1)
      form(strategy, all, next_try)
    end
  end

  defp candidates("static", all), do: all
  defp candidates("epmd", all) do
    prefix = all |> hd() |> Atom.to_string() |> String.replace(~r/_[^_]*$/, "")  # form_beam_PID_ROUND
    case :net_adm.names(~c"127.0.0.1") do
      {:ok, names} -> for {name, _} <- names, String.starts_with?(to_string(name), prefix), do: :"#{name}@127.0.0.1"
      _ -> []
    end
  end

  defp wait_adapters(n) do
    if length(Bench.PubSub.adapters()) < n, do: (Process.sleep(5); wait_adapters(n))
  end
end

Bench.Main.run(System.argv())
