#!/usr/bin/env escript
%% -*- erlang -*-
-mode(compile).
-include("../tests/interop/hypha_nodes.hrl").
%% The cluster services demo: three C++ nodes run the cluster registry and the distributed
%% supervisor from their config files; jobs started from the shell run on the member the hash
%% ring picks; named cluster tasks run once each; kill -9 of a node moves its jobs and restarts
%% its tasks on the others, SIGTERM hands them over.
%% Every line shown is what the nodes actually did.
%% Usage: ERL_EPMD_PORT=... escript services.escript HYPHA_BINARY WORK_DIR

main([Hypha, Dir]) ->
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    put(hypha, Hypha), put(dir, Dir), put(os_pids, []), put(cookie, "demo_cookie"),
    Nodes = [A, B, C] = ['alpha@127.0.0.1', 'beta@127.0.0.1', 'gamma@127.0.0.1'],
    try
        say("Three C++ nodes, each with this in its config file (and the other two as static nodes):"),
        io:format("    | [supervisor]\n    | [tasks]\n    | [[cache]]\n    | name = \"sessions\"\n    | mode = \"partitioned\"\n"
                  "    | replicas = 2\n    | [cluster]\n    | detect_ms = 1000\n    | strategies = [\"static\"]\n"),
        [put({os, N}, start_node(N, config(N, Nodes))) || N <- Nodes],
        {ok, _} = net_kernel:start(['services_demo@127.0.0.1', longnames]),
        erlang:set_cookie(node(), list_to_atom(get(cookie))),
        ok = wait_until(fun() -> lists:all(fun(N) -> length(rpc:call(N, erlang, nodes, [])) >= 2 end, Nodes) end, 10000),

        say("Six jobs started through alpha from the shell (hypha sup start alpha job-N timer sleep '[infinity]'):"),
        [show(cli(["sup", "start", atom_to_list(A), "job-" ++ integer_to_list(I), "timer", "sleep", "[infinity]"]))
         || I <- lists:seq(1, 6)],
        say("Where they run, as beta sees the cluster (hypha sup which beta):"),
        show(cli(["sup", "which", atom_to_list(B)])),
        say("Four named cluster tasks, 4 s each (hypha task start alpha report-N timer sleep '[4000]' --restart):"),
        ok = wait_until(fun() -> is_list(rpc:call(A, hypha_tasks, list, [])) end, 5000),
        [show(cli(["task", "start", atom_to_list(A), "report-" ++ integer_to_list(I), "timer", "sleep", "[4000]", "--restart"]))
         || I <- lists:seq(1, 4)],
        show(cli(["task", "start", atom_to_list(B), "report-1", "timer", "sleep", "[4000]"])),
        say("The tasks as gamma sees them (hypha task list gamma): NAME STATUS NODE"),
        show(cli(["task", "list", atom_to_list(C)])),
        say("A partitioned cache, two copies of each key (hypha cache put/get/size):"),
        ok = wait_until(fun() -> lists:all(fun(N) -> maps:get(ready, rpc:call(N, hypha_cache, stats, [sessions])) end, Nodes) end, 5000),
        show(cli(["cache", "put", atom_to_list(A), "sessions", "<<\"ann\">>", "#{cart => [book, pen]}"])),
        [ok = rpc:call(lists:nth(1 + I rem 3, Nodes), hypha_cache, put, [sessions, I, I * I]) || I <- lists:seq(1, 1000)],
        io:format("    and 1000 more from Erlang (hypha_cache:put/3 through all three nodes)~n"),
        show(cli(["cache", "get", atom_to_list(C), "sessions", "<<\"ann\">>"])),
        show(cli(["cache", "size", atom_to_list(B), "sessions"])),
        [io:format("    ~s holds ~s", [N, element(2, cli(["cache", "size", atom_to_list(N), "sessions", "--local"]))]) || N <- Nodes],

        Victim = busiest(Nodes),
        Others = Nodes -- [Victim],
        say("kill -9 of " ++ atom_to_list(Victim) ++ ", which runs the most:"),
        T0 = erlang:monotonic_time(millisecond),
        os:cmd("kill -9 " ++ integer_to_list(get({os, Victim}))),
        ok = wait_until(fun() -> all_on(hd(Others), Others) end, 5000),
        io:format("    all six running again on the others after ~b ms~n", [erlang:monotonic_time(millisecond) - T0]),
        show(cli(["sup", "which", atom_to_list(hd(Others))])),
        Kept = length([I || I <- lists:seq(1, 1000), rpc:call(hd(Others), hypha_cache, get, [sessions, I]) =:= {ok, I * I}]),
        io:format("    the cache: ~b of the 1000 keys read back from ~s~n", [Kept, hd(Others)]),
        show(cli(["cache", "get", atom_to_list(hd(Others)), "sessions", "<<\"ann\">>"])),
        say("The tasks: those of " ++ atom_to_list(Victim) ++ " started again on the others (hypha task list):"),
        ok = wait_until(fun() -> tasks_on(hd(Others), Others) end, 5000),
        show(cli(["task", "list", atom_to_list(hd(Others))])),
        ok = wait_until(fun() -> lists:all(fun({_, S, _, _}) -> S =:= done end, tasks(hd(Others))) end, 15000),
        say("A few seconds later, all done (hypha task list, status, result):"),
        show(cli(["task", "list", atom_to_list(hd(Others))])),
        show(cli(["task", "status", atom_to_list(hd(Others)), "report-1"])),
        show(cli(["task", "result", atom_to_list(hd(Others)), "report-1"])),

        [Leaver, Stayer] = Others,
        say("SIGTERM to " ++ atom_to_list(Leaver) ++ ": it hands its jobs over, then exits"),
        os:cmd("kill -TERM " ++ integer_to_list(get({os, Leaver}))),
        io:format("    exit status ~p~n", [exit_status(get({os, Leaver}), 10000)]),
        ok = wait_until(fun() -> all_on(Stayer, [Stayer]) end, 5000),
        show(cli(["sup", "which", atom_to_list(Stayer)])),
        say("Their ids in the cluster registry (hypha registry list " ++ atom_to_list(Stayer) ++ "):"),
        show(cli(["registry", "list", atom_to_list(Stayer)])),
        _ = C,
        cleanup()
    catch
        Class:Reason:Stack ->
            cleanup(),
            io:format("demo failed: ~p:~p~n~p~n", [Class, Reason, Stack]),
            halt(1)
    end;
main(_) ->
    io:format("usage: services.escript HYPHA_BINARY WORK_DIR~n"),
    halt(2).

config(Name, Nodes) ->
    Others = [["\"", atom_to_list(N), "\", "] || N <- Nodes, N =/= Name],
    ["[supervisor]\n[tasks]\n[[cache]]\nname = \"sessions\"\nmode = \"partitioned\"\nreplicas = 2\n[cluster]\ndetect_ms = 1000\nstrategies = [\"static\"]\n[cluster.static]\nnodes = [", Others, "]\n"].

say(Text) -> io:format("~n== ~s~n", [Text]).

show({Status, Out}) ->
    [io:format("    ~s~n", [L]) || L <- binary:split(Out, <<"\n">>, [global]), L =/= <<>>],
    Status =/= 0 andalso io:format("    (exit ~b)~n", [Status]).

%% The jobs (not the tasks, also the supervisor's children).
which(Node) -> [J || J = {<<"job-", _/binary>>, _, _} <- rpc:call(Node, hypha_sup, which_children, [], 2000)].

tasks(Node) ->
    case rpc:call(Node, hypha_tasks, list, [], 2000) of
        L when is_list(L) -> L;
        _ -> []
    end.

%% Node lists the four tasks, each running on one of On.
tasks_on(Node, On) ->
    L = tasks(Node),
    length(L) =:= 4 andalso lists:all(fun({_, S, W, _}) -> S =:= running andalso lists:member(W, On) end, L).

busiest(Nodes) ->
    Counts = [{length([x || {_, _, W} <- which(hd(Nodes)), W =:= N]), N} || N <- Nodes],
    element(2, lists:max(Counts)).

%% Node lists six jobs, each running on one of On.
all_on(Node, On) ->
    case which(Node) of
        L when is_list(L), length(L) =:= 6 -> lists:all(fun({_, _, W}) -> lists:member(W, On) end, L);
        _ -> false
    end.
