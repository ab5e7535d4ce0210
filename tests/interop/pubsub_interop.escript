#!/usr/bin/env escript
%% -*- erlang -*-
-mode(compile).
%%
%% Pub/sub between a hypha node and a real Elixir 1.14 node running Phoenix.PubSub's PG2 adapter
%% (elixir/pubsub_peer.exs, written from its wire shapes): a C++ broadcast reaches an Elixir
%% subscriber, an Elixir broadcast reaches a C++ subscriber (`hypha pubsub listen`, against the
%% Elixir node and against the hypha node), direct and local broadcasts, the rpc built-ins, and
%% an unknown pubsub refused with exit 1. The hypha node runs from a config file ([[pubsub]]).
%% Usage (ERL_EPMD_PORT set): escript pubsub_interop.escript HYPHA DIR

main([Hypha, Dir]) ->
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    os:getenv("ERL_EPMD_PORT") =/= false orelse fail_now("ERL_EPMD_PORT must be set for isolation"),
    Uniq = os:getpid(),
    put(hypha, Hypha),
    put(cookie, "pubsub_cookie"),
    put(os_pids, []),
    H = list_to_atom("hypha_ps_" ++ Uniq ++ "@127.0.0.1"),
    E = list_to_atom("elixir_ps_" ++ Uniq ++ "@127.0.0.1"),
    put(h, H),
    put(e, E),
    File = filename:join(Dir, "hypha.toml"),
    ok = file:write_file(File, ["[node]\nname = \"", atom_to_list(H), "\"\ncookie = \"", get(cookie),
                                "\"\n[[pubsub]]\nname = \"Elixir.MyApp.PubSub\"\n"]),
    HPort = open_port({spawn_executable, Hypha}, [{args, ["node", "--config", File]}, binary, {line, 65536},
                                                  exit_status, stderr_to_stdout]),
    track(HPort),
    {ok, _} = expect_line(HPort, <<"started">>, 10000),
    Exs = filename:join(filename:dirname(escript:script_name()), "elixir/pubsub_peer.exs"),
    EPort = open_port({spawn_executable, os:find_executable("elixir")},
                      [{args, ["--name", atom_to_list(E), "--cookie", get(cookie), Exs]},
                       binary, {line, 65536}, exit_status, stderr_to_stdout]),
    track(EPort),
    put(e_port, EPort),
    {ok, _} = expect_line(EPort, <<"ready">>, 30000),
    {ok, _} = net_kernel:start([list_to_atom("pubsub_interop_" ++ Uniq ++ "@127.0.0.1"), longnames]),
    erlang:set_cookie(node(), list_to_atom(get(cookie))),
    pong = net_adm:ping(H),
    pong = net_adm:ping(E),
    %% The Elixir node joins the hypha node's cluster; its scope and ours discover each other.
    true = rpc:call(E, net_kernel, connect_node, [H]),
    ok = wait_until(fun() -> length(rpc:call(E, pg, get_members, ['Elixir.Phoenix.PubSub', 'Elixir.MyApp.PubSub.Adapter'])) =:= 2 end),
    Cases = [fun cpp_broadcast_reaches_elixir_subscriber/0, fun elixir_broadcast_reaches_cpp_listener/0,
             fun elixir_broadcast_reaches_listener_of_the_hypha_node/0, fun rpc_builtins_on_the_hypha_node/0,
             fun unknown_pubsub_is_exit_1/0],
    Results = [run_case(C) || C <- Cases],
    cleanup(),
    Failed = [R || R <- Results, R =/= ok],
    io:format("pubsub interop: ~b cases, ~b failed~n", [length(Results), length(Failed)]),
    halt(case Failed of [] -> 0; _ -> 1 end);
main(_) ->
    io:format("usage: pubsub_interop.escript HYPHA_BINARY WORK_DIR~n"),
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

track(Port) ->
    {os_pid, OsPid} = erlang:port_info(Port, os_pid),
    put(os_pids, [OsPid | get(os_pids)]).

cleanup() ->
    [os:cmd("kill -9 " ++ integer_to_list(P) ++ " 2>/dev/null") || P <- get(os_pids)],
    ok.

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

wait_until(Pred) -> wait_until(Pred, 500).
wait_until(_Pred, 0) -> timeout;
wait_until(Pred, N) ->
    case Pred() of
        true -> ok;
        false -> receive after 10 -> wait_until(Pred, N - 1) end
    end.

%% Runs the hypha CLI to the end: {ExitStatus, Output}.
cli(Args) ->
    Port = open_port({spawn_executable, get(hypha)}, [{args, Args ++ ["--cookie", get(cookie)]}, binary, exit_status]),
    collect(Port, <<>>).
collect(Port, Acc) ->
    receive
        {Port, {data, D}} -> collect(Port, <<Acc/binary, D/binary>>);
        {Port, {exit_status, S}} -> {S, Acc}
    after 30000 -> timeout
    end.

%% `hypha pubsub listen NODE ...` in the background: its port, once it said `subscribed`.
listen(Node, Count) ->
    Port = open_port({spawn_executable, get(hypha)},
                     [{args, ["pubsub", "listen", atom_to_list(Node), "Elixir.MyApp.PubSub", "jobs",
                              "--count", integer_to_list(Count), "--timeout", "20", "--cookie", get(cookie)]},
                      binary, {line, 65536}, exit_status, stderr_to_stdout]),
    track(Port),
    {ok, _} = expect_line(Port, <<"subscribed">>, 20000),
    Port.

%% The listener's message lines, until it exits: {Status, Lines}.
lines(Port, Acc) ->
    receive
        {Port, {data, {eol, L}}} -> lines(Port, [L | Acc]);
        {Port, {exit_status, S}} -> {S, lists:reverse(Acc)}
    after 20000 -> timeout
    end.

%% ------------------------------------------------------------------------------------------

cpp_broadcast_reaches_elixir_subscriber() ->
    {0, <<>>} = cli(["pubsub", "broadcast", atom_to_list(get(h)), "Elixir.MyApp.PubSub", "jobs", "{progress, 42, <<\"x\">>}"]),
    {ok, <<"got {:progress, 42, \"x\"}">>} = expect_line(get(e_port), <<"got">>, 5000),
    ok.

elixir_broadcast_reaches_cpp_listener() ->
    Port = listen(get(e), 2),
    ok = rpc:call(get(e), 'Elixir.Phoenix.PubSub', broadcast, ['Elixir.MyApp.PubSub', <<"jobs">>, {from_elixir, 1}]),
    ok = rpc:call(get(e), 'Elixir.Phoenix.PubSub', broadcast, ['Elixir.MyApp.PubSub', <<"jobs">>, {from_elixir, 2}]),
    {0, [<<"{from_elixir,1}">>, <<"{from_elixir,2}">>]} = lines(Port, []),
    %% The Elixir subscriber got them too (its own node's local dispatch).
    {ok, _} = expect_line(get(e_port), <<"got {:from_elixir, 2}">>, 5000),
    ok.

elixir_broadcast_reaches_listener_of_the_hypha_node() ->
    Port = listen(get(h), 1),
    ok = rpc:call(get(e), 'Elixir.Phoenix.PubSub', broadcast, ['Elixir.MyApp.PubSub', <<"jobs">>, via_elixir]),
    {0, [<<"via_elixir">>]} = lines(Port, []),
    {ok, _} = expect_line(get(e_port), <<"got :via_elixir">>, 5000),
    ok.

rpc_builtins_on_the_hypha_node() ->
    H = get(h),
    E = get(e),
    ok = rpc:call(H, 'Elixir.Phoenix.PubSub', direct_broadcast, [E, 'Elixir.MyApp.PubSub', <<"jobs">>, direct]),
    {ok, _} = expect_line(get(e_port), <<"got :direct">>, 5000),
    ok = rpc:call(H, 'Elixir.Phoenix.PubSub', local_broadcast, ['Elixir.MyApp.PubSub', <<"jobs">>, local_only]),
    ok = rpc:call(H, 'Elixir.Phoenix.PubSub', broadcast, ['Elixir.MyApp.PubSub', <<"jobs">>, after_local,
                                                         'Elixir.Phoenix.PubSub']),
    %% The Elixir subscriber gets after_local and never local_only.
    {ok, <<"got :after_local">>} = expect_line(get(e_port), <<"got">>, 5000),
    ok.

unknown_pubsub_is_exit_1() ->
    {1, Out} = cli(["pubsub", "broadcast", atom_to_list(get(h)), "Elixir.Nope", "jobs", "x"]),
    <<"{error,{unknown_pubsub,'Elixir.Nope'}}\n">> = Out,
    ok.
