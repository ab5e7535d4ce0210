#!/usr/bin/env escript
%% -*- erlang -*-
-mode(compile).
-include("../tests/interop/hypha_nodes.hrl").
%% The cluster services demo: three C++ nodes run the cluster registry and the distributed
%% supervisor from their config files; jobs started from the shell run on the member the hash
%% ring picks; kill -9 of a node moves its jobs to the others, SIGTERM hands them over.
%% Every line shown is what the nodes actually did.
%% Usage: ERL_EPMD_PORT=... escript services.escript HYPHA_BINARY WORK_DIR

main([Hypha, Dir]) ->
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    put(hypha, Hypha), put(dir, Dir), put(os_pids, []), put(cookie, "demo_cookie"),
    Nodes = [A, B, C] = ['alpha@127.0.0.1', 'beta@127.0.0.1', 'gamma@127.0.0.1'],
    try
        say("Three C++ nodes, each with this in its config file (and the other two as static nodes):"),
        io:format("    | [supervisor]\n    | [cluster]\n    | detect_ms = 1000\n    | strategies = [\"static\"]\n"),
        [put({os, N}, start_node(N, config(N, Nodes))) || N <- Nodes],
        {ok, _} = net_kernel:start(['services_demo@127.0.0.1', longnames]),
        erlang:set_cookie(node(), list_to_atom(get(cookie))),
        ok = wait_until(fun() -> lists:all(fun(N) -> length(rpc:call(N, erlang, nodes, [])) >= 2 end, Nodes) end, 10000),

        say("Six jobs started through alpha from the shell (hypha sup start alpha job-N timer sleep '[infinity]'):"),
        [show(cli(["sup", "start", atom_to_list(A), "job-" ++ integer_to_list(I), "timer", "sleep", "[infinity]"]))
         || I <- lists:seq(1, 6)],
        say("Where they run, as beta sees the cluster (hypha sup which beta):"),
        show(cli(["sup", "which", atom_to_list(B)])),

        Victim = busiest(Nodes),
        Others = Nodes -- [Victim],
        say("kill -9 of " ++ atom_to_list(Victim) ++ ", which runs the most:"),
        T0 = erlang:monotonic_time(millisecond),
        os:cmd("kill -9 " ++ integer_to_list(get({os, Victim}))),
        ok = wait_until(fun() -> all_on(hd(Others), Others) end, 5000),
        io:format("    all six running again on the others after ~b ms~n", [erlang:monotonic_time(millisecond) - T0]),
        show(cli(["sup", "which", atom_to_list(hd(Others))])),

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
    ["[supervisor]\n[cluster]\ndetect_ms = 1000\nstrategies = [\"static\"]\n[cluster.static]\nnodes = [", Others, "]\n"].

say(Text) -> io:format("~n== ~s~n", [Text]).

show({Status, Out}) ->
    [io:format("    ~s~n", [L]) || L <- binary:split(Out, <<"\n">>, [global]), L =/= <<>>],
    Status =/= 0 andalso io:format("    (exit ~b)~n", [Status]).

which(Node) -> rpc:call(Node, hypha_sup, which_children, [], 2000).

busiest(Nodes) ->
    Counts = [{length([x || {_, _, W} <- which(hd(Nodes)), W =:= N]), N} || N <- Nodes],
    element(2, lists:max(Counts)).

%% Node lists six jobs, each running on one of On.
all_on(Node, On) ->
    case which(Node) of
        L when is_list(L), length(L) =:= 6 -> lists:all(fun({_, _, W}) -> lists:member(W, On) end, L);
        _ -> false
    end.
