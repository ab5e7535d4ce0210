# An Elixir node naming a GenServer in the hypha cluster registry as Elixir code does,
# `name: {:via, :hypha_registry, name}`, with the shipped erlang/hypha_registry.erl. Prints
# `via ok` once the server runs under its name (and a second start was refused), then stays
# until its stdin closes.
# Usage: elixir --name N --cookie C registry_via.exs HYPHA_NODE MODULE_SOURCE
[hypha, src] = System.argv()
hypha = String.to_atom(hypha)
{:ok, :hypha_registry, bin} = :compile.file(String.to_charlist(src), [:binary, :report])
{:module, :hypha_registry} = :code.load_binary(:hypha_registry, String.to_charlist(src), bin)
:ok = :hypha_registry.set_node(hypha)
true = Node.connect(hypha)

defmodule Echo do
  use GenServer
  @impl true
  def init(x), do: {:ok, x}
  @impl true
  def handle_call(:ping, _from, s), do: {:reply, {:pong, s}, s}
end

name = {:via, :hypha_registry, {:elixir, "echo"}}
{:ok, pid} = GenServer.start_link(Echo, 42, name: name)
{:pong, 42} = GenServer.call(name, :ping)
{:error, {:already_started, ^pid}} = GenServer.start(Echo, 0, name: name)
^pid = :rpc.call(hypha, :hypha_registry, :whereis_name, [{:elixir, "echo"}])
IO.puts("via ok")
IO.gets("")
