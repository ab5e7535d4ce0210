#!/usr/bin/env escript
%% -*- erlang -*-
-mode(compile).
%% The membership demo: a mixed cluster forms by itself, then groups and pub/sub cross it.
%%   gamma  a C++ node whose config lists delta and the Elixir node ([cluster] static, mesh)
%%   delta  a C++ node that finds every node registered with EPMD ([cluster] epmd)
%%   elixir an Elixir 1.14 node running Phoenix.PubSub's PG2 adapter (pubsub_peer.exs, written
%%          from its wire shapes), with a subscriber on "jobs" that prints what it gets
%%   this   an Erlang node with a pg scope
%% Every line shown is what the nodes actually did.
%% Usage: ERL_EPMD_PORT=... escript membership.escript HYPHA_BINARY WORK_DIR

main([Hypha, Dir]) ->
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    put(hypha, Hypha), put(dir, Dir), put(os_pids, []), put(cookie, "demo_cookie"),
    Gamma = 'gamma@127.0.0.1', Delta = 'delta@127.0.0.1', Ex = 'elixir_demo@127.0.0.1',
    try
        say("Starting delta (C++, finds nodes through EPMD), then an Elixir node with a Phoenix.PubSub subscriber"),
        start_hypha(Delta, "[cluster]\nstrategies = [\"epmd\"]\n[cluster.epmd]\ninterval_ms = 1000\n"),
        Exs = filename:join([filename:dirname(filename:dirname(escript:script_name())),
                             "tests", "interop", "elixir", "pubsub_peer.exs"]),
        EPort = open_port({spawn_executable, os:find_executable("elixir")},
                          [{args, ["--name", atom_to_list(Ex), "--cookie", get(cookie), Exs]},
                           binary, {line, 65536}, exit_status, stderr_to_stdout]),
        track(EPort),
        {ok, _} = expect_line(EPort, <<"ready">>, 30000),
        say("Starting gamma (C++) from a config file that lists delta and the Elixir node:"),
        Config = io_lib:format("[cluster]\nstrategies = [\"static\"]\nmesh = true\n[cluster.static]\n"
                               "nodes = [\"~s\", \"~s\"]\n[[pubsub]]\nname = \"Elixir.MyApp.PubSub\"\n", [Delta, Ex]),
        io:format("~s", [["    | " ++ L ++ "\n" || L <- string:split(lists:flatten(Config), "\n", all), L =/= ""]]),
        T0 = erlang:monotonic_time(millisecond),
        start_hypha(Gamma, Config),
        {ok, _} = net_kernel:start(['membership_demo@127.0.0.1', longnames]),
        erlang:set_cookie(node(), list_to_atom(get(cookie))),
        {ok, _} = pg:start_link(),
        ok = until(fun() -> lists:sort(nodes_of(Delta)) -- [node()] =:= lists:sort([Gamma, Ex]) end),
        io:format("    full mesh ~b ms after gamma started~n",
                  [erlang:monotonic_time(millisecond) - T0]),
        [io:format("    ~s: nodes() -> ~p~n", [N, lists:sort(nodes_of(N)) -- [node()]]) || N <- [Gamma, Delta, Ex]],

        say("pg: gamma's inbox joins group workers from the shell; Erlang sees it"),
        {0, Pid} = cli(["rpc", atom_to_list(Gamma), "erlang", "whereis", "[inbox]"]),
        {0, _} = cli(["rpc", atom_to_list(Gamma), "pg", "join", "[pg, workers, " ++ string:trim(Pid) ++ "]"]),
        ok = until(fun() -> pg:get_members(workers) =/= [] end),
        io:format("    Erlang: pg:get_members(workers) -> ~p~n", [pg:get_members(workers)]),

        say("pub/sub: C++ broadcasts on \"jobs\"; the Elixir subscriber prints it"),
        show(cli(["pubsub", "broadcast", atom_to_list(Gamma), "Elixir.MyApp.PubSub", "jobs", "{progress, 75, <<\"job-1\">>}"])),
        {ok, Got} = expect_line(EPort, <<"got">>, 5000),
        io:format("    Elixir: ~s~n", [Got]),

        say("and back: Elixir broadcasts; a C++ listener (hypha pubsub listen) prints it"),
        L = open_port({spawn_executable, Hypha},
                      [{args, ["pubsub", "listen", atom_to_list(Gamma), "Elixir.MyApp.PubSub", "jobs", "--cookie", get(cookie)]},
                       binary, {line, 65536}, exit_status, stderr_to_stdout]),
        track(L),
        {ok, _} = expect_line(L, <<"subscribed">>, 20000),
        ok = rpc:call(Ex, 'Elixir.Phoenix.PubSub', broadcast, ['Elixir.MyApp.PubSub', <<"jobs">>, {done, <<"job-1">>}]),
        {ok, Heard} = expect_line(L, <<"done">>, 5000),
        io:format("    C++ listener: ~s~n", [Heard])
    after
        [os:cmd("kill -9 " ++ integer_to_list(P) ++ " 2>/dev/null") || P <- get(os_pids)]
    end;
main(_) ->
    io:format("usage: membership.escript HYPHA_BINARY WORK_DIR~n"),
    halt(2).

say(Text) -> io:format("~n== ~s~n", [Text]).

track(Port) ->
    {os_pid, OsPid} = erlang:port_info(Port, os_pid),
    put(os_pids, [OsPid | get(os_pids)]).

start_hypha(Name, Cluster) ->
    File = filename:join(get(dir), atom_to_list(Name) ++ ".toml"),
    ok = file:write_file(File, ["[node]\nname = \"", atom_to_list(Name), "\"\ncookie = \"", get(cookie),
                                "\"\ninbox = [\"inbox\"]\n", Cluster]),
    Port = open_port({spawn_executable, get(hypha)}, [{args, ["node", "--config", File]}, binary, {line, 65536},
                                                      exit_status, stderr_to_stdout]),
    track(Port),
    {ok, _} = expect_line(Port, <<"started">>, 10000),
    Port.

expect_line(Port, Text, Timeout) ->
    receive
        {Port, {data, {eol, Line}}} ->
            case binary:match(Line, Text) of
                nomatch -> expect_line(Port, Text, Timeout);
                _ -> {ok, Line}
            end;
        {Port, {exit_status, S}} -> {exited, S}
    after Timeout -> timeout
    end.

cli(Args) ->
    Port = open_port({spawn_executable, get(hypha)}, [{args, Args ++ ["--cookie", get(cookie)]}, binary, exit_status]),
    collect(Port, <<>>).
collect(Port, Acc) ->
    receive
        {Port, {data, D}} -> collect(Port, <<Acc/binary, D/binary>>);
        {Port, {exit_status, S}} -> {S, binary_to_list(Acc)}
    after 30000 -> timeout
    end.

show({Status, Out}) -> io:format("    (exit ~b) ~s~n", [Status, string:trim(Out)]).

nodes_of(N) ->
    case rpc:call(N, erlang, nodes, []) of
        L when is_list(L) -> L;
        _ -> []
    end.

until(Pred) -> until(Pred, 500).
until(_Pred, 0) -> timeout;
until(Pred, N) ->
    case Pred() of
        true -> ok;
        false -> receive after 20 -> until(Pred, N - 1) end
    end.
