#!/usr/bin/env bash
# Runs one example with the Erlang/Elixir side of its walkthrough, on loopback, with a port
# mapper of its own: installs what is missing, builds, runs, stops everything it started.
#   examples/run.sh stack_server | product_stock | kv | download_manager
set -euo pipefail
cd "$(dirname "$0")/.."
example=${1:-}
case "$example" in stack_server|product_stock|kv|download_manager) ;; *)
  echo "usage: examples/run.sh stack_server | product_stock | kv | download_manager" >&2; exit 2 ;;
esac
scripts/build.sh >/dev/null
bin="$PWD/build/release"
export ERL_EPMD_PORT=${EXAMPLES_EPMD_PORT:-45369}
epmd -daemon
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true' EXIT
wait_line() {  # wait_line FILE TEXT: until the program said it is ready (30 s at most)
  for _ in $(seq 300); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "no '$2' in $1:" >&2; cat "$1" >&2; exit 1
}
log=$(mktemp -d)
case "$example" in
stack_server)
  # The C++ server, then the messaging intro's Elixir client, unchanged, from an Elixir node.
  "$bin/examples/stack_server" --name stack@127.0.0.1 --cookie intro >"$log/stack" 2>&1 & pids+=($!)
  wait_line "$log/stack" ready
  elixir --name client@127.0.0.1 --cookie intro -e '
    true = Node.connect(:"stack@127.0.0.1")
    find = fn f -> case :global.whereis_name(:stack) do :undefined -> Process.sleep(20); f.(f); p -> p end end
    stack = find.(find)
    IO.puts("the stack, from :global: #{inspect(stack)} on #{node(stack)}")
    send(stack, {:subscribe, "joe", self()})
    send(stack, {:push, "joe", :coffee})
    send(stack, {:push, "joe", "cake"})
    send(stack, {:get, "joe"})
    send(stack, {:pop, "joe"})
    for _ <- 1..4, do: receive(do: (m -> IO.puts("joe got #{inspect(m)}")))
    IO.puts("GenServer.call({:global, :stack}, :pop) -> #{inspect(GenServer.call({:global, :stack}, :pop))}")
    receive do m -> IO.puts("joe got #{inspect(m)}") end
    send(stack, {:pop, "joe"})
    receive do m -> IO.puts("joe got #{inspect(m)}") end'
  ;;
product_stock)
  "$bin/examples/product_stock" --name stock@127.0.0.1 --cookie shop >"$log/stock" 2>&1 & pids+=($!)
  wait_line "$log/stock" ready
  "$bin/examples/product_stock" --name pos@127.0.0.1 --cookie shop --stock stock@127.0.0.1 >"$log/pos" 2>&1 & pids+=($!)
  wait_line "$log/pos" ready
  erl -noshell -name shop@127.0.0.1 -setcookie shop -eval '
    Stock = {server, '"'"'stock@127.0.0.1'"'"'}, Pos = {pos, '"'"'pos@127.0.0.1'"'"'},
    Show = fun(What) -> receive M -> io:format("~s -> ~p~n", [What, M]) after 5000 -> io:format("~s -> nothing~n", [What]) end end,
    Stock ! {add, self(), milk}, Show("{add, self(), milk}"),
    Stock ! {add, self(), <<"bread">>}, Show("{add, self(), <<\"bread\">>}"),
    Stock ! {status, self()}, Show("{status, self()}"),
    Pos ! {ask, self(), milk}, Show("pos: {ask, self(), milk}"),
    Pos ! {ask, self(), cheese}, Show("pos: {ask, self(), cheese}"),
    halt().'
  ;;
kv)
  escript demo/kv.escript "$bin/apps/hypha/hypha" "$log/kv"
  ;;
download_manager)
  /usr/bin/python3 demo/hyphad_cluster.py --bin "$bin" --out "$log/hyphad" ${DEMO_KEEP:+--keep}
  ;;
esac
