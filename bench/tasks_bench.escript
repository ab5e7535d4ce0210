#!/usr/bin/env escript
%% -*- erlang -*-
-mode(compile).
%%
%% Unique cluster tasks: three `hypha node --config` nodes with [tasks]; this OTP node drives
%% them by rpc. Latency: start_async of an empty task (erlang:node/0) until get_status says done
%% (polled), p50 and p99 of ROUNDS; throughput: 10 callers starting TOTAL empty tasks at once
%% until every one of them is done.
%% (No BEAM library for uniquely named cluster tasks ships in Debian: no BEAM side, see
%% docs/benchmarks.md.)
%% Usage (ERL_EPMD_PORT set, an epmd running on it): escript tasks_bench.escript HYPHA DIR ROUNDS TOTAL

main([Hypha, Dir, Rounds, Total]) ->
    Uniq = os:getpid(),
    {ok, _} = net_kernel:start([list_to_atom("tbdrv_" ++ Uniq ++ "@127.0.0.1"), longnames]),
    erlang:set_cookie(node(), bench),
    Names = [list_to_atom("tb" ++ Uniq ++ "_" ++ integer_to_list(I) ++ "@127.0.0.1") || I <- [1, 2, 3]],
    OsPids = [start(Hypha, Dir, N, Names) || N <- Names],
    ok = wait(fun() -> lists:all(fun(N) -> is_list(rpc:call(N, hypha_tasks, list, [])) end, Names) end, 20000),
    [H | _] = Names,
    Lat = [latency(H, R) || R <- lists:seq(1, list_to_integer(Rounds))],
    Sorted = lists:sort(Lat),
    Pct = fun(P) -> lists:nth(max(1, ceil(P * length(Sorted))), Sorted) end,
    io:format("side=hypha metric=task_start_to_done_p50 value=~.2f unit=ms~n", [Pct(0.5) / 1000]),
    io:format("side=hypha metric=task_start_to_done_p99 value=~.2f unit=ms~n", [Pct(0.99) / 1000]),
    N = list_to_integer(Total),
    Rate = throughput(Names, N),
    io:format("side=hypha metric=tasks_started_and_done_per_s value=~b unit=tasks/s~n", [round(Rate)]),
    [os:cmd("kill -9 " ++ integer_to_list(P)) || P <- OsPids],
    halt(0).

start(Hypha, Dir, Name, All) ->
    File = filename:join(Dir, atom_to_list(Name) ++ ".toml"),
    Others = [["\"", atom_to_list(X), "\", "] || X <- All, X =/= Name],
    ok = file:write_file(File, ["[node]\nname = \"", atom_to_list(Name), "\"\ncookie = \"bench\"\n",
                                "[tasks]\n[cluster]\nstrategies = [\"static\"]\n",
                                "[cluster.static]\nnodes = [", Others, "]\n"]),
    Port = open_port({spawn_executable, Hypha}, [{args, ["node", "--config", File]}, binary, exit_status]),
    {os_pid, OsPid} = erlang:port_info(Port, os_pid),
    OsPid.

latency(H, R) ->
    Name = iolist_to_binary(["lat", integer_to_list(R)]),
    T0 = erlang:monotonic_time(microsecond),
    {ok, _} = rpc:call(H, hypha_tasks, start_async, [erlang, node, [], [{name, Name}]]),
    ok = wait(fun() -> rpc:call(H, hypha_tasks, get_status, [Name]) =:= {done, Name} end, 5000, 0),
    erlang:monotonic_time(microsecond) - T0.

throughput(Nodes, N) ->
    Me = self(),
    Per = N div 10,
    T0 = erlang:monotonic_time(microsecond),
    [spawn_link(fun() ->
                        Node = lists:nth(1 + C rem length(Nodes), Nodes),
                        [{ok, _} = rpc:call(Node, hypha_tasks, start_async,
                                            [erlang, node, [], [{name, iolist_to_binary(["tp", integer_to_list(C), "_", integer_to_list(I)])}]])
                         || I <- lists:seq(1, Per)],
                        Me ! started
                end) || C <- lists:seq(1, 10)],
    [receive started -> ok end || _ <- lists:seq(1, 10)],
    ok = wait(fun() ->
                      L = rpc:call(hd(Nodes), hypha_tasks, list, []),
                      length([x || {<<"tp", _/binary>>, done, _, _} <- L]) =:= Per * 10
              end, 60000, 5),
    (Per * 10) / ((erlang:monotonic_time(microsecond) - T0) / 1.0e6).

wait(F, Ms) -> wait(F, Ms, 10).
wait(F, Ms, Step) -> wait_(F, erlang:monotonic_time(millisecond) + Ms, Step).
wait_(F, Deadline, Step) ->
    case F() of
        true -> ok;
        _ ->
            case erlang:monotonic_time(millisecond) > Deadline of
                true -> timeout;
                false -> receive after Step -> wait_(F, Deadline, Step) end
            end
    end.
