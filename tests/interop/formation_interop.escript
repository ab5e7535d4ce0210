#!/usr/bin/env escript
%% -*- erlang -*-
-mode(compile).
%%
%% Formation for real, with OS processes: a mixed cluster (two hypha nodes and this OTP node)
%% forms from one hypha node's static list plus mesh; a hypha node killed with -9 and started
%% again under its name is reconnected within the backoff cap; the epmd strategy finds every
%% node registered with EPMD. The hypha nodes run from config files ([cluster]).
%% Usage (ERL_EPMD_PORT set): escript formation_interop.escript HYPHA DIR

main([Hypha, Dir]) ->
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    os:getenv("ERL_EPMD_PORT") =/= false orelse fail_now("ERL_EPMD_PORT must be set for isolation"),
    Uniq = os:getpid(),
    put(hypha, Hypha),
    put(dir, Dir),
    put(cookie, "formation_cookie"),
    put(os_pids, []),
    Me = list_to_atom("formation_interop_" ++ Uniq ++ "@127.0.0.1"),
    [A, B, C] = [list_to_atom("hypha_f" ++ L ++ "_" ++ Uniq ++ "@127.0.0.1") || L <- ["a", "b", "c"]],
    put(a, A), put(b, B), put(c, C), put(me, Me),
    %% B first: it serves EPMD (embedded) for everyone on this port.
    put(b_os, start_hypha(B, "")),
    {ok, _} = net_kernel:start([Me, longnames]),
    erlang:set_cookie(node(), list_to_atom(get(cookie))),
    Cases = [fun mixed_cluster_forms_from_a_static_list/0, fun killed_node_is_reconnected/0,
             fun epmd_strategy_finds_every_registered_node/0],
    Results = [run_case(F) || F <- Cases],
    cleanup(),
    Failed = [R || R <- Results, R =/= ok],
    io:format("formation interop: ~b cases, ~b failed~n", [length(Results), length(Failed)]),
    halt(case Failed of [] -> 0; _ -> 1 end);
main(_) ->
    io:format("usage: formation_interop.escript HYPHA_BINARY WORK_DIR~n"),
    halt(2).

run_case(F) ->
    {name, Name} = erlang:fun_info(F, name),
    R = try F() of
            ok -> ok;
            Other -> {fail, Other}
        catch
            Cl:E:S -> {fail, {Cl, E, hd(S)}}
        end,
    case R of
        ok -> io:format("ok   ~s~n", [Name]);
        {fail, Why} -> io:format("FAIL ~s: ~p~n", [Name, Why])
    end,
    R.

fail_now(Why) ->
    io:format("FAIL ~s~n", [Why]),
    cleanup(),
    halt(1).

cleanup() ->
    [os:cmd("kill -9 " ++ integer_to_list(P) ++ " 2>/dev/null") || P <- get(os_pids)],
    ok.

%% `hypha node --config` with [node] and the given [cluster] text: its OS pid.
start_hypha(Name, Cluster) ->
    File = filename:join(get(dir), atom_to_list(Name) ++ ".toml"),
    ok = file:write_file(File, ["[node]\nname = \"", atom_to_list(Name), "\"\ncookie = \"", get(cookie), "\"\n", Cluster]),
    Port = open_port({spawn_executable, get(hypha)}, [{args, ["node", "--config", File]}, binary, {line, 65536},
                                                      exit_status, stderr_to_stdout]),
    {os_pid, OsPid} = erlang:port_info(Port, os_pid),
    put(os_pids, [OsPid | get(os_pids)]),
    {ok, _} = expect_line(Port, <<"started">>, 10000),
    OsPid.

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

%% Polls for up to Ms milliseconds; ok with the time it took, or timeout.
within(Pred, Ms) -> within(Pred, Ms, erlang:monotonic_time(millisecond)).
within(Pred, Ms, T0) ->
    case Pred() of
        true -> {ok, erlang:monotonic_time(millisecond) - T0};
        false ->
            case erlang:monotonic_time(millisecond) - T0 > Ms of
                true -> timeout;
                false -> receive after 20 -> within(Pred, Ms, T0) end
            end
    end.

nodes_of(N) ->
    case rpc:call(N, erlang, nodes, []) of
        L when is_list(L) -> L;
        _ -> []
    end.

has(N, Peers) -> fun() -> Ns = nodes_of(N), lists:all(fun(P) -> lists:member(P, Ns) end, Peers) end.

%% ------------------------------------------------------------------------------------------

mixed_cluster_forms_from_a_static_list() ->
    A = get(a), B = get(b), Me = get(me),
    pong = net_adm:ping(B),
    %% A lists only B; it meets this OTP node through B's peers (mesh). This node never contacts
    %% A first, so only A's formation can make that connection.
    Static = io_lib:format("[cluster]\nstrategies = [\"static\"]\n[cluster.static]\nnodes = [\"~s\"]\n", [B]),
    put(a_os, start_hypha(A, Static)),
    {ok, Ms} = within(fun() -> lists:member(A, nodes()) end, 10000),
    io:format("     full mesh ~b ms after A started~n", [Ms]),
    {ok, _} = within(has(A, [B, Me]), 5000),
    ok.

killed_node_is_reconnected() ->
    A = get(a), B = get(b),
    %% Kill A (B serves EPMD), then start it again under its name: B has no list, so it is A's
    %% static list that must bring the cluster back.
    os:cmd("kill -9 " ++ integer_to_list(get(a_os))),
    {ok, _} = within(fun() -> not lists:member(A, nodes_of(B)) end, 10000),
    Static = io_lib:format("[cluster]\nstrategies = [\"static\"]\n[cluster.static]\nnodes = [\"~s\"]\n", [B]),
    put(a_os, start_hypha(A, Static)),
    {ok, Ms} = within(has(A, [B]), 6000),
    io:format("     reconnected ~b ms after the restart~n", [Ms]),
    %% And the other way round: a node in A's list killed and restarted is reconnected by A.
    os:cmd("kill -9 " ++ integer_to_list(get(b_os))),
    {ok, _} = within(fun() -> not lists:member(B, nodes_of(A)) end, 10000),
    put(b_os, start_hypha(B, "")),
    {ok, Ms2} = within(has(A, [B]), 6000),
    io:format("     listed node reconnected ~b ms after its restart~n", [Ms2]),
    ok.

epmd_strategy_finds_every_registered_node() ->
    A = get(a), B = get(b), C = get(c), Me = get(me),
    start_hypha(C, "[cluster]\nstrategies = [\"epmd\"]\nmesh = false\n[cluster.epmd]\nhosts = [\"127.0.0.1\"]\ninterval_ms = 500\n"),
    %% C finds this node in EPMD's list (this node never contacts C first), and the others.
    {ok, _} = within(fun() -> lists:member(C, nodes()) end, 5000),
    {ok, _} = within(has(C, [A, B, Me]), 5000),
    ok.
