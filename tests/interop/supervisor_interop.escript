#!/usr/bin/env escript
%% -*- erlang -*-
-mode(compile).
-include("hypha_nodes.hrl").
%%
%% The distributed supervisor with OS processes and a real OTP 25 node (this script): three
%% `hypha node --config` nodes with [supervisor] (a static list, mesh, detect_ms = 1000) run
%% children started by the CLI and by rpc hypha_sup:start_child/1 from Erlang. Each id runs once
%% (counted: every node's view lists it with the same pid, and that pid is alive where it runs);
%% a node stopped with SIGSTOP has its children started on the others and, after SIGCONT, one
%% copy of each remains; kill -9 moves a node's children within 1 s; SIGTERM hands them over
%% before the node exits 0.
%% Usage (ERL_EPMD_PORT set to a port of this test's own): escript supervisor_interop.escript HYPHA DIR

main([Hypha, Dir]) ->
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    os:getenv("ERL_EPMD_PORT") =/= false orelse fail_now("ERL_EPMD_PORT must be set for isolation"),
    Uniq = os:getpid(),
    put(hypha, Hypha),
    put(cookie, "sup_cookie"),
    put(dir, Dir),
    put(os_pids, []),
    Names = [list_to_atom("hypha_sup" ++ integer_to_list(I) ++ "_" ++ Uniq ++ "@127.0.0.1") || I <- [1, 2, 3]],
    put(names, Names),
    [put({os, N}, start_sup_node(N, Names)) || N <- Names],
    {ok, _} = net_kernel:start([list_to_atom("sup_interop_" ++ Uniq ++ "@127.0.0.1"), longnames]),
    erlang:set_cookie(node(), list_to_atom(get(cookie))),
    [pong = net_adm:ping(N) || N <- Names],
    put(downs, spawn(fun() -> ok = net_kernel:monitor_nodes(true), downs([]) end)),
    ok = wait_until(fun() -> lists:all(fun(N) -> length(rpc:call(N, erlang, nodes, [])) >= 3 end, Names) end),
    Cases = [fun the_cli_starts_lists_and_terminates_children/0,
             fun children_started_from_erlang_run_once_each/0,
             fun a_stopped_node_loses_its_children_and_one_copy_remains_after_it_returns/0,
             fun a_killed_node_s_children_start_on_the_others_within_a_second/0,
             fun sigterm_hands_the_children_over_before_the_node_exits/0,
             fun this_beam_node_keeps_the_tick_time_with_hypha_nodes/0],
    Results = [run_case(C) || C <- Cases],
    cleanup(),
    Failed = [R || R <- Results, R =/= ok],
    io:format("supervisor interop: ~b cases, ~b failed~n", [length(Results), length(Failed)]),
    halt(case Failed of [] -> 0; _ -> 1 end);
main(_) ->
    io:format("usage: supervisor_interop.escript HYPHA_BINARY WORK_DIR~n"),
    halt(2).

%% The nodedowns this node has seen, for the last case.
downs(Seen) ->
    receive
        {nodedown, N} -> downs([N | Seen]);
        {nodeup, _} -> downs(Seen);
        {seen, From} -> From ! {seen, Seen}, downs(Seen)
    end.

fail_now(Why) ->
    io:format("FAIL ~s~n", [Why]),
    cleanup(),
    halt(1).

start_sup_node(Name, All) ->
    Others = [["\"", atom_to_list(N), "\", "] || N <- All, N =/= Name],
    start_node(Name, ["[registry]\nsync_interval_ms = 20\n[supervisor]\n"
                      "[cluster]\ndetect_ms = 1000\nstrategies = [\"static\"]\n[cluster.static]\nnodes = [",
                      Others, "]\n"]).

names() -> get(names).
live(Nodes) -> [N || N <- Nodes, not lists:member(N, get(dead))].

which(Node) ->
    case rpc:call(Node, hypha_sup, which_children, [], 2000) of
        L when is_list(L) -> lists:sort(L);
        Other -> Other
    end.

spec(Id) -> #{id => Id, start => {timer, sleep, [infinity]}, restart => permanent}.

%% Every node of Nodes lists the ids Ids, the same pid for each on every node, running on one of
%% Nodes and alive there.
one_copy_each(Nodes, Ids) ->
    Views = [which(N) || N <- Nodes],
    case lists:usort(Views) of
        [View] ->
            lists:sort([Id || {Id, _, _} <- View]) =:= lists:sort(Ids) andalso
                lists:all(fun({_, Pid, Where}) -> lists:member(Where, Nodes) andalso
                                                 rpc:call(Where, erlang, is_process_alive, [Pid], 2000) =:= true end, View);
        _ -> false
    end.

%% ------------------------------------------------------------------------------------------
%% cases

the_cli_starts_lists_and_terminates_children() ->
    put(dead, []),
    [H1, H2, _] = names(),
    {0, Out} = cli(["sup", "start", atom_to_list(H1), "cli-job", "timer", "sleep", "[infinity]"]),
    ok = wait_until(fun() -> lists:keymember(<<"cli-job">>, 1, which(H2)) end),
    {_, Pid, Where} = lists:keyfind(<<"cli-job">>, 1, which(H2)),
    Where = node(Pid),
    Out = iolist_to_binary(["{ok,", pid_text(Pid), "}\n"]),
    {0, Lines} = cli(["sup", "which", atom_to_list(H2)]),
    Line = iolist_to_binary(["cli-job ", pid_text(Pid), " ", atom_to_list(Where)]),
    [Line] = [L || L <- binary:split(Lines, <<"\n">>, [global]), L =/= <<>>],
    {1, Again} = cli(["sup", "start", atom_to_list(H2), "cli-job", "timer", "sleep", "[infinity]"]),
    Again = iolist_to_binary(["{error,{already_started,", pid_text(Pid), "}}\n"]),
    {0, <<"ok\n">>} = cli(["sup", "terminate", atom_to_list(H2), "cli-job"]),
    ok = wait_until(fun() -> rpc:call(Where, erlang, is_process_alive, [Pid]) =:= false end),
    ok = wait_until(fun() -> which(H1) =:= [] end),
    {1, <<"{error,not_found}\n">>} = cli(["sup", "terminate", atom_to_list(H1), "cli-job"]),
    {1, _} = cli(["sup", "start", atom_to_list(H1), "bad", "timer", "sleep", "not_a_list"]),
    ok.

children_started_from_erlang_run_once_each() ->
    Nodes = names(),
    %% Placement hashes the id over the members' names, which hold this run's OS pid: with 30 ids
    %% the chance that one of three members gets none is 3 * (2/3)^30, about 1 in 60000 (with 12
    %% it was 1 in 40, and CI met it).
    Ids = [{job, I} || I <- lists:seq(1, 30)],
    [{ok, _} = rpc:call(lists:nth(1 + I rem 3, Nodes), hypha_sup, start_child, [spec({job, I})]) || {job, I} <- Ids],
    ok = wait_until(fun() -> one_copy_each(Nodes, Ids) end),
    Where = lists:usort([W || {_, _, W} <- which(hd(Nodes))]),
    3 = length(Where),  % spread over the members
    {error, {already_started, _}} = rpc:call(hd(Nodes), hypha_sup, start_child, [spec({job, 1})]),
    put(ids, Ids),
    ok.

a_stopped_node_loses_its_children_and_one_copy_remains_after_it_returns() ->
    [H1, H2, H3] = Nodes = names(),
    Ids = get(ids),
    OnH3 = [Id || {Id, _, W} <- which(H1), W =:= H3],
    true = OnH3 =/= [],
    Os = integer_to_list(get({os, H3})),
    os:cmd("kill -STOP " ++ Os),
    %% H1 and H2 declare H3 down after 1 s (the tick time is 60 s) and start its children.
    Moved = wait_until(fun() -> one_copy_each([H1, H2], Ids) end, 5000),
    os:cmd("kill -CONT " ++ Os),
    ok = Moved,
    %% H3 comes back (its copies still run there at first): the registry's older registration
    %% wins, the other copy stops, and all three views agree on one copy of each.
    ok = wait_until(fun() -> one_copy_each(Nodes, Ids) end, 10000),
    ok.

a_killed_node_s_children_start_on_the_others_within_a_second() ->
    [H1, H2, H3] = names(),
    Ids = get(ids),
    ok = wait_until(fun() -> [W || {_, _, W} <- which(H1), W =:= H2] =/= [] end),
    T0 = erlang:monotonic_time(millisecond),
    os:cmd("kill -9 " ++ integer_to_list(get({os, H2}))),
    case wait_until(fun() -> one_copy_each([H1, H3], Ids) end, 5000) of
        ok -> ok;
        timeout ->
            io:format("     views: ~p~n     ~p~n", [which(H1), which(H3)]),
            [print_output(get({os, N}), 60) || N <- [H1, H2, H3]],
            error(not_moved)
    end,
    Took = erlang:monotonic_time(millisecond) - T0,
    io:format("     kill -9: children running again on the survivors after ~b ms~n", [Took]),
    true = Took < 1000,
    put(dead, [H2]),
    ok.

sigterm_hands_the_children_over_before_the_node_exits() ->
    [H1, _, H3] = names(),
    Ids = get(ids),
    Os = get({os, H3}),
    os:cmd("kill -TERM " ++ integer_to_list(Os)),
    0 = exit_status(Os, 10000),
    ok = wait_until(fun() -> one_copy_each([H1], Ids) end, 3000),
    ok.

%% The hypha nodes detect each other within detect_ms (1 s), but not this BEAM node, which never
%% answers their heartbeat hello: it keeps the tick protocol (a tick every 15 s), so an idle
%% connection to it outlives the detect time.
this_beam_node_keeps_the_tick_time_with_hypha_nodes() ->
    [H1 | _] = names(),
    receive after 2500 -> ok end,  % idle for 2.5 detect times (looking for a drop, not waiting for an event)
    get(downs) ! {seen, self()},
    Seen = receive {seen, S} -> S after 5000 -> timeout end,
    false = lists:member(H1, Seen),
    true = lists:member(H1, nodes()),
    ok.
