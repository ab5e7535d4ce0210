#!/usr/bin/env escript
%% -*- erlang -*-
-mode(compile).
%%
%% pg between hypha nodes and a real OTP 25 node (this script), both directions: members joined
%% on one side are in pg:get_members on the other, leaves, exits and a killed node are seen
%% across, pg:monitor notifications come for C++ joins, and a hidden hypha node takes part by
%% sending the first discover. The hypha nodes run from a config file ([pg] scopes).
%% Usage (ERL_EPMD_PORT set to a port of this test's own): escript pg_interop.escript HYPHA DIR

main([Hypha, Dir]) ->
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    os:getenv("ERL_EPMD_PORT") =/= false orelse fail_now("ERL_EPMD_PORT must be set for isolation"),
    Uniq = os:getpid(),
    put(hypha, Hypha),
    put(cookie, "pg_cookie"),
    put(dir, Dir),
    put(os_pids, []),
    H = list_to_atom("hypha_pg_" ++ Uniq ++ "@127.0.0.1"),
    put(h, H),
    put(h2, list_to_atom("hypha_pg_hidden_" ++ Uniq ++ "@127.0.0.1")),
    {HPort, HOs} = start_hypha(H, false, ["w1", "w2", "w3"]),
    put(h_port, HPort),
    put(h_os, HOs),
    {ok, _} = net_kernel:start([list_to_atom("pg_interop_" ++ Uniq ++ "@127.0.0.1"), longnames]),
    erlang:set_cookie(node(), list_to_atom(get(cookie))),
    {ok, _} = pg:start_link(pg),
    {ok, _} = pg:start_link(other),
    pong = net_adm:ping(H),
    Cases = [fun erlang_sees_cpp_members/0, fun cpp_sees_erlang_members/0,
             fun erlang_leave_and_exit_are_seen_by_cpp/0, fun cpp_leave_and_exit_are_seen_by_erlang/0,
             fun erlang_monitor_hears_cpp_joins/0, fun scopes_are_separate/0,
             fun cli_rpc_lists_members/0, fun global_names_are_registered_through_erlang/0,
             fun hidden_hypha_node_joins_the_overlay/0,
             fun killed_hypha_node_leaves_erlangs_groups/0],
    Results = [run_case(C) || C <- Cases],
    cleanup(),
    Failed = [R || R <- Results, R =/= ok],
    io:format("pg interop: ~b cases, ~b failed~n", [length(Results), length(Failed)]),
    halt(case Failed of [] -> 0; _ -> 1 end);
main(_) ->
    io:format("usage: pg_interop.escript HYPHA_BINARY WORK_DIR~n"),
    halt(2).

run_case(F) ->
    {name, Name} = erlang:fun_info(F, name),
    R = try F() of
            ok -> ok;
            Other -> {fail, Other}
        catch
            C:E:S -> {fail, {C, E, hd(S)}}
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

%% A `hypha node --config FILE` with inboxes given as flags.
start_hypha(Name, Hidden, Inboxes) ->
    File = filename:join(get(dir), atom_to_list(Name) ++ ".toml"),
    ok = file:write_file(File, ["[node]\nname = \"", atom_to_list(Name), "\"\ncookie = \"", get(cookie),
                                "\"\nhidden = ", atom_to_list(Hidden), "\nglobal_names = [\"w2\"]\n[pg]\nscopes = [\"pg\", \"other\"]\n"]),
    Args = ["node", "--config", File | lists:append([["--inbox", I] || I <- Inboxes])],
    Port = open_port({spawn_executable, get(hypha)}, [{args, Args}, binary, {line, 65536}, exit_status, stderr_to_stdout]),
    {os_pid, OsPid} = erlang:port_info(Port, os_pid),
    put(os_pids, [OsPid | get(os_pids)]),
    {ok, _} = expect_line(Port, <<"started">>, 10000),
    {Port, OsPid}.

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

cleanup() ->
    [os:cmd("kill -9 " ++ integer_to_list(P) ++ " 2>/dev/null") || P <- get(os_pids)],
    ok.

%% Polls an observable state for up to 5 s.
wait_until(Pred) -> wait_until(Pred, 500).
wait_until(_Pred, 0) -> timeout;
wait_until(Pred, N) ->
    case Pred() of
        true -> ok;
        false -> receive after 10 -> wait_until(Pred, N - 1) end
    end.

inbox(Node, Name) -> rpc:call(Node, erlang, whereis, [Name]).

idle() -> spawn(fun() -> receive stop -> ok end end).

%% ------------------------------------------------------------------------------------------
%% cases

erlang_sees_cpp_members() ->
    H = get(h),
    W1 = inbox(H, w1),
    true = is_pid(W1),
    ok = rpc:call(H, pg, join, [pg, g1, W1]),
    ok = rpc:call(H, pg, join, [g1, [W1]]),  % pg:join/2: the default scope; a member twice
    ok = wait_until(fun() -> pg:get_members(pg, g1) =:= [W1, W1] end),
    [] = pg:get_local_members(pg, g1),
    true = lists:member(g1, pg:which_groups(pg)),
    ok.

cpp_sees_erlang_members() ->
    H = get(h),
    P = idle(),
    ok = pg:join(pg, g2, P),
    ok = wait_until(fun() -> rpc:call(H, pg, get_members, [pg, g2]) =:= [P] end),
    [] = rpc:call(H, pg, get_local_members, [pg, g2]),
    true = lists:member(g2, rpc:call(H, pg, which_groups, [pg])),
    put(p2, P),
    ok.

erlang_leave_and_exit_are_seen_by_cpp() ->
    H = get(h),
    P = get(p2),
    ok = pg:leave(pg, g2, P),
    ok = wait_until(fun() -> rpc:call(H, pg, get_members, [pg, g2]) =:= [] end),
    Q = idle(),
    ok = pg:join(pg, g2, [P, Q]),
    ok = wait_until(fun() -> rpc:call(H, pg, get_members, [pg, g2]) =:= [P, Q] end),
    exit(P, kill),
    ok = wait_until(fun() -> rpc:call(H, pg, get_members, [pg, g2]) =:= [Q] end),
    ok.

cpp_leave_and_exit_are_seen_by_erlang() ->
    H = get(h),
    W1 = inbox(H, w1),
    ok = rpc:call(H, pg, leave, [pg, g1, W1]),
    ok = wait_until(fun() -> pg:get_members(pg, g1) =:= [W1] end),
    not_joined = rpc:call(H, pg, leave, [pg, nosuch, W1]),
    {badrpc, {'EXIT', {{nolocal, _}, _}}} = rpc:call(H, pg, join, [pg, g1, self()]),  % only local pids
    {hypha_pg, H} ! {exit, bye},  % not an inbox: nothing happens
    {w1, H} ! {exit, bye},        % the inbox exits: it leaves everywhere
    ok = wait_until(fun() -> pg:get_members(pg, g1) =:= [] end),
    ok.

erlang_monitor_hears_cpp_joins() ->
    H = get(h),
    {Ref, []} = pg:monitor(pg, g3),
    W2 = inbox(H, w2),
    ok = rpc:call(H, pg, join, [pg, g3, W2]),
    receive {Ref, join, g3, [W2]} -> ok after 5000 -> error(no_join_notification) end,
    ok = rpc:call(H, pg, leave, [pg, g3, [W2]]),
    receive {Ref, leave, g3, [W2]} -> ok after 5000 -> error(no_leave_notification) end,
    pg:demonitor(pg, Ref),
    ok.

scopes_are_separate() ->
    H = get(h),
    W3 = inbox(H, w3),
    ok = rpc:call(H, pg, join, [other, g4, W3]),
    ok = wait_until(fun() -> pg:get_members(other, g4) =:= [W3] end),
    [] = pg:get_members(pg, g4),
    P = idle(),
    ok = pg:join(other, g5, P),
    ok = wait_until(fun() -> rpc:call(H, pg, get_members, [other, g5]) =:= [P] end),
    [] = rpc:call(H, pg, get_members, [pg, g5]),
    ok.

cli_rpc_lists_members() ->
    H = get(h),
    P = idle(),
    ok = pg:join(pg, cli_group, P),
    ok = wait_until(fun() -> rpc:call(H, pg, get_members, [pg, cli_group]) =:= [P] end),
    {0, Text} = cli(["rpc", atom_to_list(H), "pg", "get_members", "[pg, cli_group]"]),
    %% hypha prints a pid with its node: <'node@host'.Id.Serial>
    [_, Id, Serial] = string:lexemes(pid_to_list(P), "<.>"),
    Expected = iolist_to_binary(io_lib:format("[<'~s'.~s.~s>]~n", [node(), Id, Serial])),
    Text =:= Expected orelse error({unexpected_output, Text, Expected}),
    %% An --inbox process joined from the shell: its pid as `erlang whereis` prints it.
    {0, PidText} = cli(["rpc", atom_to_list(H), "erlang", "whereis", "[w3]"]),
    {0, <<"ok\n">>} = cli(["rpc", atom_to_list(H), "pg", "join", "[pg, cli_group, " ++ string:trim(binary_to_list(PidText)) ++ "]"]),
    W3 = inbox(H, w3),
    ok = wait_until(fun() -> pg:get_members(pg, cli_group) =:= [W3, P] end),
    ok.

cli(Args) ->
    collect(open_port({spawn_executable, get(hypha)},
                      [{args, Args ++ ["--cookie", get(cookie)]}, binary, exit_status, stderr_to_stdout]), <<>>).

collect(Port, Acc) ->
    receive
        {Port, {data, D}} -> collect(Port, <<Acc/binary, D/binary>>);
        {Port, {exit_status, S}} -> {S, Acc}
    after 20000 -> timeout
    end.

%% [node] global_names: the hypha node registers its w2 in global through this node.
global_names_are_registered_through_erlang() ->
    H = get(h),
    W2 = inbox(H, w2),
    ok = wait_until(fun() -> global:whereis_name(w2) =:= W2 end),
    global:send(w2, {ping, self()}),
    receive {pong, W2} -> ok after 5000 -> error(no_pong_through_global) end,
    ok.

%% A hidden node is never discovered by an Erlang scope: the hypha scope sends the first discover
%% on nodeup, and the groups work both ways.
hidden_hypha_node_joins_the_overlay() ->
    H2 = get(h2),
    {_Port, _Os} = start_hypha(H2, true, ["hw"]),
    pong = net_adm:ping(H2),
    false = lists:member(H2, nodes()),  % hidden
    true = lists:member(H2, nodes(hidden)),
    HW = inbox(H2, hw),
    ok = rpc:call(H2, pg, join, [pg, hidden_group, HW]),
    ok = wait_until(fun() -> pg:get_members(pg, hidden_group) =:= [HW] end),
    P = idle(),
    ok = pg:join(pg, hidden_group, P),
    ok = wait_until(fun() -> rpc:call(H2, pg, get_members, [pg, hidden_group]) =:= [P, HW] end),
    ok.

killed_hypha_node_leaves_erlangs_groups() ->
    H = get(h),
    W2 = inbox(H, w2),
    ok = rpc:call(H, pg, join, [pg, doomed, W2]),
    ok = wait_until(fun() -> pg:get_members(pg, doomed) =:= [W2] end),
    os:cmd("kill -9 " ++ integer_to_list(get(h_os))),
    ok = wait_until(fun() -> pg:get_members(pg, doomed) =:= [] end),
    [] = [M || G <- pg:which_groups(pg), M <- pg:get_members(pg, G), node(M) =:= H],
    ok = wait_until(fun() -> global:whereis_name(w2) =:= undefined end),  % left global with its node
    ok.
