#!/usr/bin/env escript
%% -*- erlang -*-
-mode(compile).
%%
%% Interop test of hypha nodes against real Erlang and Elixir nodes on loopback.
%% Usage (ERL_EPMD_PORT set to a port of this test's own): escript node_interop.escript HYPHA DIR
%%
%% This script is itself an OTP 25 node. It starts `hypha node` OS processes (the first one serves
%% EPMD on ERL_EPMD_PORT, embedded), and checks, each as one case:
%%   ping both ways, Node.list both ways (and from Elixir), send to a registered name and to
%%   {Name, Node} both ways, message order, monitors and links across nodes in both directions with
%%   the real exit reason, trap_exit, kill -9 of a hypha node (noconnection, nodedown), a hung
%%   hypha node noticed within the tick time, a wrong cookie refused on both sides while the node
%%   keeps serving, and `hypha names`.
%% Every OS process it starts is killed at the end, pass or fail. Exit 0 when all cases pass.

main([Hypha, Dir]) ->
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    EpmdPort = os:getenv("ERL_EPMD_PORT"),
    EpmdPort =/= false orelse fail_now("ERL_EPMD_PORT must be set for isolation"),
    Cookie = "interop_cookie",
    Uniq = os:getpid(),
    put(hypha, Hypha),
    put(cookie, Cookie),
    put(os_pids, []),
    HName = "hypha_a_" ++ Uniq ++ "@127.0.0.1",
    H = list_to_atom(HName),
    put(h, H),
    %% The first hypha node serves EPMD for everyone (no epmd program runs on this port).
    HP = start_hypha(HName, ["--ticktime", "4", "--inbox", "inbox", "--inbox", "inbox2", "--inbox", "inbox3",
                             "--inbox", "inbox4", "--inbox", "inbox5"]),
    put(h_port, HP),
    {ok, _} = net_kernel:start([list_to_atom("interop_" ++ Uniq ++ "@127.0.0.1"), longnames, 1000]),  % tick interval 1 s: net_ticktime 4 s
    erlang:set_cookie(node(), list_to_atom(Cookie)),
    register(sink, self()),
    Cases = [fun ping_from_erlang/0, fun hypha_lists_erlang_node/0, fun ping_from_hypha/0, fun ping_unknown_node_is_pang/0,
             fun send_to_hypha_name/0, fun send_from_hypha/0, fun order_is_kept/0,
             fun erlang_sends_to_a_hypha_alias/0,
             fun monitor_hypha_process/0, fun link_to_hypha_process/0,
             fun hypha_monitors_erlang_process/0, fun hypha_link_propagates_to_erlang/0,
             fun elixir_pings_and_lists/0, fun elixir_monitors_a_hypha_process/0,
             fun erlang_nodes_find_each_other_through_hypha_epmd/0,
             fun names_lists_registered_nodes/0,
             fun wrong_cookie_is_refused_and_node_serves_on/0,
             fun hung_node_is_noticed_within_ticktime/0, fun kill_9_gives_noconnection/0],
    Results = [run_case(C) || C <- Cases],
    cleanup(),
    Failed = [R || R <- Results, R =/= ok],
    io:format("node interop: ~b cases, ~b failed~n", [length(Results), length(Failed)]),
    halt(case Failed of [] -> 0; _ -> 1 end);
main(_) ->
    io:format("usage: node_interop.escript HYPHA_BINARY WORK_DIR~n"),
    halt(2).

run_case(F) ->
    {name, Name} = erlang:fun_info(F, name),
    T0 = erlang:monotonic_time(millisecond),
    R = try F() of
            ok -> ok;
            Other -> {fail, Other}
        catch
            C:E:S -> {fail, {C, E, hd(S)}}
        end,
    Ms = erlang:monotonic_time(millisecond) - T0,
    case R of
        ok -> io:format("ok   ~s (~b ms)~n", [Name, Ms]);
        {fail, Why} -> io:format("FAIL ~s: ~p~n", [Name, Why])
    end,
    R.

fail_now(Why) ->
    io:format("FAIL ~s~n", [Why]),
    cleanup(),
    halt(1).

%% ------------------------------------------------------------------------------------------
%% helpers

start_hypha(Name, Extra) ->
    start_hypha(Name, get(cookie), Extra).
start_hypha(Name, Cookie, Extra) ->
    Port = open_port({spawn_executable, get(hypha)},
                     [{args, ["node", "--name", Name, "--cookie", Cookie | Extra]},
                      binary, {line, 65536}, exit_status, stderr_to_stdout]),
    {os_pid, OsPid} = erlang:port_info(Port, os_pid),
    put(os_pids, [OsPid | get(os_pids)]),
    {ok, _} = expect_line(Port, <<"started">>, 10000),
    Port.

%% Waits for a line of the hypha node's output that contains Text.
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

hypha(Args) -> hypha(Args, 20000).
hypha(Args, Timeout) ->
    Port = open_port({spawn_executable, get(hypha)},
                     [{args, Args ++ ["--cookie", get(cookie)]}, binary, exit_status, stderr_to_stdout]),
    collect(Port, [], Timeout).

hypha_raw(Args) ->
    Port = open_port({spawn_executable, get(hypha)}, [{args, Args}, binary, exit_status, stderr_to_stdout]),
    collect(Port, [], 20000).

collect(Port, Acc, Timeout) ->
    receive
        {Port, {data, D}} -> collect(Port, [D | Acc], Timeout);
        {Port, {exit_status, S}} -> {S, iolist_to_binary(lists:reverse(Acc))}
    after Timeout -> {timeout, iolist_to_binary(lists:reverse(Acc))}
    end.

cleanup() ->
    [os:cmd("kill -9 " ++ integer_to_list(P) ++ " 2>/dev/null") || P <- get(os_pids)],
    ok.

%% Polls Pred (an observable state, such as a link registered at the other end) for up to 5 s.
wait_until(Pred) -> wait_until(Pred, 500).
wait_until(_Pred, 0) -> timeout;
wait_until(Pred, N) ->
    case Pred() of
        true -> ok;
        false -> receive after 10 -> wait_until(Pred, N - 1) end
    end.

%% The pid of a hypha inbox, learnt by asking it.
inbox_pid(Name) ->
    {Name, get(h)} ! {ping, self()},
    receive {pong, P} -> P after 5000 -> error({no_pong_from, Name}) end.

%% ------------------------------------------------------------------------------------------
%% cases

ping_from_erlang() ->
    H = get(h),
    pong = net_adm:ping(H),
    true = lists:member(H, nodes()),
    ok.

hypha_lists_erlang_node() ->
    {inbox4, get(h)} ! {nodes, self()},
    receive
        {nodes, Nodes} -> true = lists:member(node(), Nodes) orelse {nodes, Nodes}, ok
    after 5000 -> timeout
    end.

ping_from_hypha() ->
    {0, <<"pong\n">>} = hypha(["ping", atom_to_list(node())]),
    ok.

ping_unknown_node_is_pang() ->
    T0 = erlang:monotonic_time(millisecond),
    {1, Out} = hypha(["ping", "nobody_" ++ os:getpid() ++ "@127.0.0.1"]),
    true = binary:match(Out, <<"pang">>) =/= nomatch,
    Took = erlang:monotonic_time(millisecond) - T0,
    true = Took < 5000 orelse {too_slow, Took},
    ok.

send_to_hypha_name() ->
    Term = {hello, self(), [1, 2.5, <<"bin">>, #{k => v}], "str"},
    {inbox, get(h)} ! Term,
    Expected = iolist_to_binary(["inbox received ", hypha_text(Term)]),
    {ok, Line} = expect_line(get(h_port), <<"inbox received {hello">>, 5000),
    Line =:= Expected orelse error({printed, Line, expected, Expected}),
    ok.

%% hypha prints pids with the node name.
hypha_text(Term) ->
    {0, Text} = decode_text(Term),
    string:trim(Text).

decode_text(Term) ->
    File = filename:join("/tmp", "interop_term_" ++ os:getpid() ++ ".etf"),
    ok = file:write_file(File, term_to_binary(Term)),
    R = hypha_raw(["term", "decode", File]),
    file:delete(File),
    R.

send_from_hypha() ->
    {0, _} = hypha(["send", atom_to_list(node()), "sink", "{from_hypha, [1,2,3], <<\"ok\">>}"]),
    receive {from_hypha, [1, 2, 3], <<"ok">>} -> ok after 5000 -> timeout end.

order_is_kept() ->
    %% 2000 messages from here to a hypha inbox that forwards nothing: instead check the other
    %% direction's ordering through an inbox that echoes pongs.
    P = inbox_pid(inbox4),
    [P ! {ping, self()} || _ <- lists:seq(1, 2000)],
    [receive {pong, P} -> ok after 5000 -> error(lost_pong) end || _ <- lists:seq(1, 2000)],
    Self = self(),
    H = get(h),
    spawn(fun() -> [{inbox4, H} ! {seq, N} || N <- lists:seq(1, 500)], Self ! sent end),
    receive sent -> ok after 5000 -> error(not_sent) end,
    check_seq(1, 500).

check_seq(N, Max) when N > Max -> ok;
check_seq(N, Max) ->
    Want = iolist_to_binary(io_lib:format("inbox4 received {seq,~b}", [N])),
    case expect_line(get(h_port), <<"inbox4 received {seq">>, 5000) of
        {ok, Want} -> check_seq(N + 1, Max);
        Other -> {out_of_order, N, Other}
    end.

erlang_sends_to_a_hypha_alias() ->
    {inbox4, get(h)} ! {alias, self()},
    Alias = receive {alias, A} when is_reference(A) -> A after 5000 -> error(no_alias) end,
    Alias ! {via_alias, 42},
    {ok, _} = expect_line(get(h_port), <<"inbox4 received {via_alias,42}">>, 5000),
    ok.

monitor_hypha_process() ->
    P = inbox_pid(inbox),
    Ref = erlang:monitor(process, P),
    {inbox, get(h)} ! {exit, {shutdown, because}},
    receive {'DOWN', Ref, process, P, Reason} -> {shutdown, because} = Reason, ok
    after 5000 -> timeout
    end.

link_to_hypha_process() ->
    P = inbox_pid(inbox2),
    Self = self(),
    spawn(fun() ->
              process_flag(trap_exit, true),
              link(P),
              Self ! linked,
              receive {'EXIT', P, R} -> Self ! {got_exit, R} after 5000 -> Self ! no_exit end
          end),
    receive linked -> ok end,
    %% LINK and the exit order travel on the same connection, in this order.
    {inbox2, get(h)} ! {exit, bang},
    receive {got_exit, R} -> bang = R, ok; no_exit -> no_exit after 6000 -> timeout end.

hypha_monitors_erlang_process() ->
    Victim = spawn(fun() -> receive go -> exit({custom, reason}) end end),
    {inbox3, get(h)} ! {monitor, Victim},
    {ok, _} = expect_line(get(h_port), <<"inbox3 received {monitor">>, 5000),
    ok = wait_until(fun() -> {monitored_by, M} = process_info(Victim, monitored_by), M =/= [] end),
    Victim ! go,
    {ok, Line} = expect_line(get(h_port), <<"inbox3 received {'DOWN'">>, 5000),
    binary:match(Line, <<"{custom,reason}">>) =/= nomatch orelse error({down_line, Line}),
    ok.

hypha_link_propagates_to_erlang() ->
    %% inbox3 links to an Erlang process that then dies: inbox3 (not trapping) dies with the same
    %% reason, which a monitor from here sees.
    P3 = inbox_pid(inbox3),
    Ref = erlang:monitor(process, P3),
    Victim = spawn(fun() -> receive go -> exit(linked_death) end end),
    {inbox3, get(h)} ! {link, Victim},
    {ok, _} = expect_line(get(h_port), <<"inbox3 received {link">>, 5000),
    ok = wait_until(fun() -> {links, L} = process_info(Victim, links), lists:member(P3, L) end),
    Victim ! go,
    receive {'DOWN', Ref, process, P3, linked_death} -> ok after 5000 -> timeout end.

elixir_pings_and_lists() ->
    H = atom_to_list(get(h)),
    Cmd = "elixir --name elixir_" ++ os:getpid() ++ "@127.0.0.1 --cookie " ++ get(cookie) ++
          " -e 'IO.inspect(Node.ping(:\"" ++ H ++ "\")); IO.inspect(Enum.member?(Node.list(), :\"" ++ H ++ "\")); "
          "send({:inbox4, :\"" ++ H ++ "\"}, {:nodes, self()}); "
          "receive do {:nodes, ns} -> IO.inspect(Enum.member?(ns, node())) after 5000 -> IO.puts(:timeout) end'",
    Out = os:cmd(Cmd),
    case string:split(string:trim(Out), "\n", all) of
        [":pong", "true", "true"] -> ok;  % the third: hypha lists the Elixir node
        Other -> {elixir_said, Other}
    end.

%% Elixir's Process.monitor on a hypha process sees the real exit reason.
elixir_monitors_a_hypha_process() ->
    H = atom_to_list(get(h)),
    Script = "send({:inbox5, :\"" ++ H ++ "\"}, {:ping, self()}); "
             "pid = receive do {:pong, p} -> p after 5000 -> exit(:no_pong) end; "
             "ref = Process.monitor(pid); "
             "send({:inbox5, :\"" ++ H ++ "\"}, {:exit, {:shutdown, :from_elixir}}); "
             "receive do {:DOWN, ^ref, :process, ^pid, reason} -> IO.inspect(reason) after 5000 -> IO.puts(\"timeout\") end",
    Cmd = "elixir --name elixir_mon_" ++ os:getpid() ++ "@127.0.0.1 --cookie " ++ get(cookie) ++ " -e '" ++ Script ++ "'",
    case string:trim(os:cmd(Cmd)) of
        "{:shutdown, :from_elixir}" -> ok;
        Other -> {elixir_said, Other}
    end.

%% Another erl node, started here, finds this one through the EPMD that the hypha node serves.
erlang_nodes_find_each_other_through_hypha_epmd() ->
    Cmd = "erl -noshell -name other_" ++ os:getpid() ++ "@127.0.0.1 -setcookie " ++ get(cookie) ++
          " -eval 'io:format(\"~p\", [net_adm:ping(list_to_atom(\"" ++ atom_to_list(node()) ++ "\"))]), halt().'",
    case string:trim(os:cmd(Cmd)) of
        "pong" -> ok;
        Other -> {other_erl_said, Other}
    end.

names_lists_registered_nodes() ->
    {0, Out} = hypha_raw(["names"]),
    [Me, Alive] = [hd(string:split(atom_to_list(N), "@")) || N <- [node(), get(h)]],
    true = binary:match(Out, list_to_binary("name " ++ Alive ++ " at port")) =/= nomatch,
    true = binary:match(Out, list_to_binary("name " ++ Me ++ " at port")) =/= nomatch,
    true = binary:match(Out, <<"epmd: up and running on port">>) =/= nomatch,
    ok.

wrong_cookie_is_refused_and_node_serves_on() ->
    Port = open_port({spawn_executable, get(hypha)},
                     [{args, ["ping", atom_to_list(get(h)), "--cookie", "not_the_cookie"]},
                      binary, exit_status, stderr_to_stdout]),
    {1, Out} = collect(Port, [], 20000),
    true = binary:match(Out, <<"pang">>) =/= nomatch,
    true = binary:match(Out, <<"handshake_failed">>) =/= nomatch,
    true = binary:match(Out, <<"not_the_cookie">>) =:= nomatch,  % never log the cookie
    {ok, Line} = expect_line(get(h_port), <<"connection_refused">>, 5000),
    true = binary:match(Line, <<"wrong cookie">>) =/= nomatch,
    {0, <<"pong\n">>} = hypha(["ping", atom_to_list(get(h))]),
    ok.

hung_node_is_noticed_within_ticktime() ->
    %% A second hypha node, stopped with SIGSTOP: the socket stays open, only ticks stop.
    Name = "hypha_hung_" ++ os:getpid() ++ "@127.0.0.1",
    _Port = start_hypha(Name, ["--ticktime", "4"]),
    N = list_to_atom(Name),
    pong = net_adm:ping(N),
    [OsPid | _] = get(os_pids),
    erlang:monitor_node(N, true),
    os:cmd("kill -STOP " ++ integer_to_list(OsPid)),
    T0 = erlang:monotonic_time(millisecond),
    R = receive {nodedown, N} -> erlang:monotonic_time(millisecond) - T0 after 15000 -> timeout end,
    os:cmd("kill -9 " ++ integer_to_list(OsPid)),
    case R of
        timeout -> timeout;
        Ms when Ms =< 8000 -> ok;
        Ms -> {too_slow, Ms}
    end.

kill_9_gives_noconnection() ->
    Name = "hypha_kill_" ++ os:getpid() ++ "@127.0.0.1",
    Port = start_hypha(Name, ["--inbox", "victim"]),
    N = list_to_atom(Name),
    {victim, N} ! {ping, self()},
    P = receive {pong, Pid} -> Pid after 5000 -> error(no_pong) end,
    Ref = erlang:monitor(process, P),
    erlang:monitor_node(N, true),
    {os_pid, OsPid} = erlang:port_info(Port, os_pid),
    T0 = erlang:monotonic_time(millisecond),
    os:cmd("kill -9 " ++ integer_to_list(OsPid)),
    receive {'DOWN', Ref, process, P, noconnection} -> ok after 5000 -> error(no_down) end,
    receive {nodedown, N} -> ok after 5000 -> error(no_nodedown) end,
    Took = erlang:monotonic_time(millisecond) - T0,
    true = Took < 2000 orelse {too_slow, Took},
    ok.
