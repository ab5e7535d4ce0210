#!/usr/bin/env escript
%% -*- erlang -*-
-mode(compile).
%% The examples against OTP 25 and Elixir 1.14, with the walkthroughs' own Erlang/Elixir side:
%% - stack_server --connect this node: registered in :global as stack through this node, and its
%%   plain messages (subscribe, push, pop, get, unsubscribe; empty; anything else ignored) from
%%   Erlang processes and from an Elixir script, besides GenServer.call({:global, :stack}, ...);
%% - product_stock: the central (product_stock and server) and a point of sale (pos) on another
%%   node asking it.
%% Every OS process it starts is killed at the end, pass or fail. Exit 0 when all cases pass.
%%
%%   escript examples_interop.escript STACK_SERVER PRODUCT_STOCK DIR   (ERL_EPMD_PORT set)

main([Stack, Product, Dir]) ->
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    os:getenv("ERL_EPMD_PORT") =/= false orelse halt(2),
    put(os_pids, []),
    put(stack_server, Stack), put(product_stock, Product), put(cookie, "examples_cookie"),
    [] = os:cmd("epmd -daemon"),
    Uniq = os:getpid(),
    {ok, _} = net_kernel:start([list_to_atom("examples_" ++ Uniq ++ "@127.0.0.1"), longnames]),
    erlang:set_cookie(node(), examples_cookie),
    Cases = [fun stack_server_in_global_speaks_the_plain_messages/0,
             fun elixir_code_of_the_intro_runs_unchanged_against_it/0,
             fun product_stock_central_and_point_of_sale/0],
    Results = [run_case(C) || C <- Cases],
    [os:cmd("kill -9 " ++ integer_to_list(P) ++ " 2>/dev/null") || P <- get(os_pids)],
    Failed = [R || R <- Results, R =/= ok],
    io:format("examples interop: ~b cases, ~b failed~n", [length(Results), length(Failed)]),
    halt(case Failed of [] -> 0; _ -> 1 end);
main(_) ->
    io:format("usage: examples_interop.escript STACK_SERVER PRODUCT_STOCK DIR~n"),
    halt(2).

run_case(F) ->
    {name, Name} = erlang:fun_info(F, name),
    T0 = erlang:monotonic_time(millisecond),
    R = try F() of
            ok -> ok;
            Other -> {fail, Other}
        catch
            C:E:St -> {fail, {C, E, hd(St)}}
        end,
    case R of
        ok -> io:format("ok   ~s (~b ms)~n", [Name, erlang:monotonic_time(millisecond) - T0]);
        {fail, Why} -> io:format("FAIL ~s: ~p~n", [Name, Why])
    end,
    R.

start_port(Exe, Args, Ready) ->
    Port = open_port({spawn_executable, Exe}, [{args, Args}, binary, {line, 65536}, exit_status, stderr_to_stdout]),
    {os_pid, OsPid} = erlang:port_info(Port, os_pid),
    put(os_pids, [OsPid | get(os_pids)]),
    {ok, _} = expect_line(Port, Ready, 15000),
    Port.

expect_line(Port, Text, Timeout) ->
    receive
        {Port, {data, {eol, Line}}} ->
            case binary:match(Line, Text) of
                nomatch -> expect_line(Port, Text, Timeout);
                _ -> {ok, Line}
            end;
        {Port, {exit_status, St}} -> {exited, St}
    after Timeout -> timeout
    end.

%% Polls Pred every 20 ms for up to 10 s.
wait_until(Pred) -> wait_until(Pred, 500).
wait_until(_, 0) -> timeout;
wait_until(Pred, N) ->
    case Pred() of
        true -> ok;
        false -> timer:sleep(20), wait_until(Pred, N - 1)
    end.

%% A subscriber process: every message it gets reaches the test as {Name, Msg}.
subscriber(Name) ->
    Test = self(),
    spawn(fun Loop() -> receive M -> Test ! {Name, M}, Loop() end end).

got(Name, Msg) ->
    receive {Name, Msg} -> ok
    after 5000 -> {timeout, Name, Msg, erlang:process_info(self(), messages)}
    end.

nothing_for(Name) ->
    receive {Name, M} -> {unexpected, Name, M}
    after 0 -> ok
    end.

stack_node() ->
    case get(stack_node) of
        undefined ->
            S = "stack_ex_" ++ os:getpid() ++ "@127.0.0.1",
            _ = start_port(get(stack_server), ["--name", S, "--cookie", get(cookie), "--connect", atom_to_list(node())],
                           <<"ready">>),
            put(stack_node, list_to_atom(S)),
            list_to_atom(S);
        S -> S
    end.

stack_server_in_global_speaks_the_plain_messages() ->
    S = stack_node(),
    ok = wait_until(fun() -> is_pid(P = global:whereis_name(stack)) andalso node(P) =:= S end),
    A = subscriber(alice), B = subscriber(bob),
    global:send(stack, {subscribe, <<"alice">>, A}),
    global:send(stack, {subscribe, <<"bob">>, B}),
    global:send(stack, {push, <<"alice">>, apples}),
    ok = got(alice, {notify, push, <<"alice">>, apples}),
    ok = got(bob, {notify, push, <<"alice">>, apples}),
    global:send(stack, {push, <<"bob">>, {pears, 3}}),
    ok = got(alice, {notify, push, <<"bob">>, {pears, 3}}),
    ok = got(bob, {notify, push, <<"bob">>, {pears, 3}}),
    global:send(stack, {get, <<"alice">>}),
    ok = got(alice, {notify, get, [{<<"bob">>, {pears, 3}}, {<<"alice">>, apples}]}),
    %% The gen_server calls see the same stack.
    2 = gen_server:call({global, stack}, size),
    global:send(stack, {pop, <<"bob">>}),
    ok = got(alice, {notify, pop, <<"bob">>, {<<"bob">>, {pears, 3}}}),
    ok = got(bob, {notify, pop, <<"bob">>, {<<"bob">>, {pears, 3}}}),
    global:send(stack, {pop, <<"alice">>}),
    ok = got(bob, {notify, pop, <<"alice">>, {<<"alice">>, apples}}),
    ok = got(alice, {notify, pop, <<"alice">>, {<<"alice">>, apples}}),
    %% Empty: only the popper is told.
    global:send(stack, {pop, <<"bob">>}),
    ok = got(bob, {notify, empty}),
    %% Anything else is ignored; an unsubscribed name hears nothing more.
    global:send(stack, {push, not_a_binary, x}),
    global:send(stack, hello),
    global:send(stack, {unsubscribe, <<"bob">>}),
    global:send(stack, {push, <<"alice">>, plums}),
    ok = got(alice, {notify, push, <<"alice">>, plums}),
    global:send(stack, {get, <<"alice">>}),
    ok = got(alice, {notify, get, [{<<"alice">>, plums}]}),
    1 = gen_server:call({global, stack}, size),
    ok = nothing_for(bob),
    ok = nothing_for(alice),
    global:send(stack, {pop, <<"alice">>}),  % left empty for the next case
    ok = got(alice, {notify, pop, <<"alice">>, {<<"alice">>, plums}}),
    0 = gen_server:call({global, stack}, size),
    ok.

%% The intro's Elixir client, as an Elixir user writes it, from an Elixir node of its own.
elixir_code_of_the_intro_runs_unchanged_against_it() ->
    S = atom_to_list(stack_node()),
    %% (Not :global.sync(): it waits for every visible node to run global, and hypha nodes do not;
    %% docs/cluster.md. The name comes with the connection: it is polled for.)
    Script = "true = Node.connect(:\"" ++ S ++ "\"); "
             "find = fn f, n -> case :global.whereis_name(:stack) do "
             ":undefined when n > 0 -> Process.sleep(20); f.(f, n - 1); p -> p end end; "
             "pid = find.(find, 250); "
             "send(pid, {:subscribe, \"ex\", self()}); "
             "send(pid, {:push, \"ex\", %{lang: :elixir}}); "
             "receive do {:notify, :push, \"ex\", item} -> IO.inspect(item) after 5000 -> IO.puts(\"no push\") end; "
             "send(pid, {:get, \"ex\"}); "
             "receive do {:notify, :get, stack} -> IO.inspect(hd(stack)) after 5000 -> IO.puts(\"no get\") end; "
             "IO.inspect GenServer.call({:global, :stack}, :pop); "
             "send(pid, {:pop, \"ex\"}); "
             "receive do {:notify, :empty} -> IO.puts(\"empty\") after 5000 -> IO.puts(\"not empty\") end",
    Cmd = "elixir --name ex_client_" ++ os:getpid() ++ "@127.0.0.1 --cookie " ++ get(cookie) ++ " -e '" ++ Script ++ "' 2>&1",
    Out = string:split(string:trim(os:cmd(Cmd)), "\n", all),
    ["%{lang: :elixir}", "{\"ex\", %{lang: :elixir}}", "%{lang: :elixir}", "empty"] = Out,
    ok.

product_stock_central_and_point_of_sale() ->
    C = "stock_" ++ os:getpid() ++ "@127.0.0.1",
    P = "pos_" ++ os:getpid() ++ "@127.0.0.1",
    _ = start_port(get(product_stock), ["--name", C, "--cookie", get(cookie)], <<"ready">>),
    _ = start_port(get(product_stock), ["--name", P, "--cookie", get(cookie), "--stock", C], <<"ready">>),
    Central = list_to_atom(C), Pos = list_to_atom(P),
    {status, Central} ! {status, self()},  % not a registered name: nothing comes back
    {product_stock, Central} ! {add, self(), milk},
    [milk] = receive L1 when is_list(L1) -> L1 after 5000 -> timeout end,
    {server, Central} ! {add, self(), <<"bread">>},
    [<<"bread">>, milk] = receive L2 when is_list(L2) -> L2 after 5000 -> timeout end,
    {server, Central} ! {status, self()},
    [<<"bread">>, milk] = receive L3 when is_list(L3) -> L3 after 5000 -> timeout end,
    {product_stock, Central} ! something_else,
    {pos, Pos} ! {ask, self(), milk},
    {print, milk} = receive {print, _} = M1 -> M1 after 5000 -> timeout end,
    {pos, Pos} ! {ask, self(), <<"bread">>},
    {print, <<"bread">>} = receive {print, _} = M2 -> M2 after 5000 -> timeout end,
    {pos, Pos} ! {ask, self(), {cheese, 1}},
    {print, <<"There is no Product {cheese,1}">>} = receive {print, _} = M3 -> M3 after 5000 -> timeout end,
    ok.
