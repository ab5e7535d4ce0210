# The Elixir side of the pub/sub interop test: a node with Phoenix.PubSub's default (PG2)
# adapter, written from its wire shapes (interop-notes.md §4; Phoenix is not packaged in
# Debian): the pg scope Phoenix.PubSub, a duplicate Registry named MyApp.PubSub for local
# subscriptions, the adapter MyApp.PubSub.Adapter registered and joined to its group, and
# broadcast/3 as Phoenix.PubSub.broadcast does it (forward_to_local to the other nodes' adapters,
# then the local subscribers). A subscriber prints "got TERM" for every message it receives.
defmodule Phoenix.PubSub do
  def broadcast(pubsub, topic, message, dispatcher \\ __MODULE__) when is_binary(topic) do
    adapter = Module.concat(pubsub, "Adapter")
    for pid <- :pg.get_members(__MODULE__, adapter), node(pid) != node() do
      send(pid, {:forward_to_local, topic, message, dispatcher})
    end
    dispatch(pubsub, topic, message)
  end

  def subscribe(pubsub, topic) when is_binary(topic) do
    {:ok, _} = Registry.register(pubsub, topic, nil)
    :ok
  end

  def dispatch(pubsub, topic, message) do
    Registry.dispatch(pubsub, topic, fn entries -> for {pid, _} <- entries, do: send(pid, message) end)
    :ok
  end
end

defmodule MyApp.PubSub.Adapter do
  use GenServer
  def start_link(_), do: GenServer.start_link(__MODULE__, nil, name: __MODULE__)

  def init(nil) do
    :ok = :pg.join(Phoenix.PubSub, __MODULE__, self())
    {:ok, nil}
  end

  def handle_info({:forward_to_local, topic, message, _dispatcher}, state) do
    Phoenix.PubSub.dispatch(MyApp.PubSub, topic, message)
    {:noreply, state}
  end

  def handle_info(_, state), do: {:noreply, state}
end

{:ok, _} = :pg.start_link(Phoenix.PubSub)
{:ok, _} = Registry.start_link(keys: :duplicate, name: MyApp.PubSub)
{:ok, _} = MyApp.PubSub.Adapter.start_link(nil)

printer = spawn(fn ->
  :ok = Phoenix.PubSub.subscribe(MyApp.PubSub, "jobs")
  send(:init_waiter, :subscribed)
  loop = fn loop ->
    receive do
      msg ->
        IO.puts("got " <> inspect(msg))
        loop.(loop)
    end
  end
  loop.(loop)
end)
Process.register(self(), :init_waiter)
receive do: (:subscribed -> :ok)
_ = printer
IO.puts("ready")
Process.sleep(:infinity)
