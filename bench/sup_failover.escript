#!/usr/bin/env escript
%% -*- erlang -*-
-mode(compile).
%%
%% Failover after kill -9: three nodes run 30 permanent children; each round kills the node
%% running the most, times until every one of them runs again on a survivor (listed by a
%% survivor and alive), then starts the killed node again. p50 and p99 of the rounds.
%%   hypha: `hypha node --config` with [supervisor] (hypha_sup), children timer:sleep(infinity)
%%   beam:  OTP 25 peer nodes running bench/beam_failover.erl (monitor_nodes + global)
%% Usage (ERL_EPMD_PORT set, an epmd running on it): escript sup_failover.escript SIDE HYPHA DIR ROUNDS

main([Side, Hypha, Dir, Rounds]) ->
    Uniq = os:getpid(),
    put(hypha, Hypha), put(dir, Dir), put(side, list_to_atom(Side)), put(prefix, "fo" ++ Uniq ++ "_"),
    {ok, _} = net_kernel:start([list_to_atom("fodrv_" ++ Uniq ++ "@127.0.0.1"), longnames]),
    erlang:set_cookie(node(), bench),
    Names = [list_to_atom(get(prefix) ++ integer_to_list(I) ++ "@127.0.0.1") || I <- [1, 2, 3]],
    put(names, Names),
    Ids = [{job, I} || I <- lists:seq(1, 30)],
    put(ids, Ids),
    [start(N) || N <- Names],
    ok = wait(fun() -> lists:all(fun(N) -> connected(N, Names) end, Names) end, 20000),
    ok = start_children(Ids),
    ok = wait(fun() -> all_running(Names) end, 10000),
    Times = [round_once(R) || R <- lists:seq(1, list_to_integer(Rounds))],
    Sorted = lists:sort(Times),
    Pct = fun(P) -> lists:nth(max(1, ceiling(P * length(Sorted))), Sorted) end,
    io:format("side=~s metric=sup_failover_30_children_p50 value=~b unit=ms~n", [Side, Pct(0.5)]),
    io:format("side=~s metric=sup_failover_30_children_p99 value=~b unit=ms~n", [Side, Pct(0.99)]),
    [os:cmd("kill -9 " ++ P) || P <- get_os_pids()],
    halt(0).

ceiling(X) -> T = trunc(X), case X > T of true -> T + 1; false -> T end.

get_os_pids() -> [P || {{os, _}, P} <- get()].

start(Name) ->
    case get(side) of
        hypha ->
            File = filename:join(get(dir), atom_to_list(Name) ++ ".toml"),
            Others = [["\"", atom_to_list(N), "\", "] || N <- get(names), N =/= Name],
            ok = file:write_file(File, ["[node]\nname = \"", atom_to_list(Name), "\"\ncookie = \"bench\"\n"
                                        "[registry]\n[supervisor]\n[cluster]\nstrategies = [\"static\"]\n"
                                        "[cluster.static]\nnodes = [", Others, "]\n"]),
            Port = open_port({spawn_executable, get(hypha)}, [{args, ["node", "--config", File]}, binary, {line, 4096}]),
            {os_pid, Os} = erlang:port_info(Port, os_pid),
            put({os, Name}, integer_to_list(Os)),
            ok = wait(fun() -> net_adm:ping(Name) =:= pong end, 10000);
        beam ->
            [Alive, _] = string:split(atom_to_list(Name), "@"),
            {ok, _, Name} = peer:start(#{name => Alive, host => "127.0.0.1", longnames => true,
                                         args => ["-setcookie", "bench"]}),
            put({os, Name}, rpc:call(Name, os, getpid, [])),
            Src = filename:join(filename:dirname(escript:script_name()), "beam_failover.erl"),
            {ok, beam_failover, Bin} = compile:file(Src, [binary]),
            {module, _} = rpc:call(Name, code, load_binary, [beam_failover, Src, Bin]),
            [pong = rpc:call(Name, net_adm, ping, [N]) || N <- get(names), N =/= Name, lists:member(N, nodes())],
            {ok, _} = rpc:call(Name, beam_failover, start, [get(ids), get(prefix)])
    end.

connected(N, Names) ->
    case rpc:call(N, erlang, nodes, [], 2000) of
        L when is_list(L) -> lists:all(fun(M) -> M =:= N orelse lists:member(M, L) end, Names);
        _ -> false
    end.

start_children(Ids) ->
    case get(side) of
        hypha ->
            [{ok, _} = rpc:call(hd(get(names)), hypha_sup, start_child,
                                [#{id => Id, start => {timer, sleep, [infinity]}, restart => permanent}]) || Id <- Ids],
            ok;
        beam -> ok  % each watcher starts its own share
    end.

%% Where each child runs now, as the cluster says: [{Id, Pid}].
placement(Names) ->
    case get(side) of
        hypha ->
            [N | _] = [M || M <- Names, lists:member(M, nodes())],
            case rpc:call(N, hypha_sup, which_children, [], 2000) of
                L when is_list(L) -> [{Id, P} || {Id, P, _} <- L];
                _ -> []
            end;
        beam -> [{Id, global:whereis_name({child, Id})} || Id <- get(ids)]
    end.

%% Every child runs, once, on one of Names, alive there.
all_running(Names) ->
    P = placement(Names),
    lists:sort([Id || {Id, _} <- P]) =:= lists:sort(get(ids)) andalso
        lists:all(fun({_, Pid}) -> is_pid(Pid) andalso lists:member(node(Pid), Names) andalso
                                   rpc:call(node(Pid), erlang, is_process_alive, [Pid], 2000) =:= true end, P).

round_once(_) ->
    Names = get(names),
    Counts = [{length([x || {_, P} <- placement(Names), node(P) =:= N]), N} || N <- Names],
    {_, Victim} = lists:max(Counts),
    Survivors = Names -- [Victim],
    T0 = erlang:monotonic_time(millisecond),
    os:cmd("kill -9 " ++ get({os, Victim})),
    ok = wait(fun() -> all_running(Survivors) end, 30000),
    Took = erlang:monotonic_time(millisecond) - T0,
    ok = wait(fun() -> not lists:member(Victim, nodes()) end, 5000),
    start(Victim),
    ok = wait(fun() -> lists:all(fun(N) -> connected(N, Names) end, Names) end, 20000),
    Took.

wait(Pred, Ms) -> wait_deadline(Pred, erlang:monotonic_time(millisecond) + Ms).
wait_deadline(Pred, Deadline) ->
    case Pred() of
        true -> ok;
        false ->
            case erlang:monotonic_time(millisecond) > Deadline of
                true -> timeout;
                false -> receive after 2 -> wait_deadline(Pred, Deadline) end
            end
    end.
