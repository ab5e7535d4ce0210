#!/usr/bin/env escript
%% -*- erlang -*-
-mode(compile).
%%
%% Cache benchmark, BEAM side (bench/cache_bench.cpp is the hypha side, same metrics): an ets
%% table on this node and on a peer VM (OTP's peer), as a replicated cache by hand would be.
%%   cache_get_local        ets:lookup of one key here, one process
%%   cache_get_remote       rpc:call(Peer, ets, lookup, ...) of keys there, one caller; _x8: 8
%%   cache_put_replicated   ets:insert here plus rpc:call(Peer, ets, insert, ...): both hold it
%%                          when the call returns (what a replicated write acknowledged by two
%%                          means), one caller; _x8: 8 at once
%%   cache_put_partitioned  rpc:call(Peer, ets, insert, ...): the key's one holder is the peer,
%%                          one caller; _x8: 8 at once
%% Usage (ERL_EPMD_PORT set, an epmd running on it): escript cache_bench.escript

main(_) ->
    Uniq = os:getpid(),
    {ok, _} = net_kernel:start([list_to_atom("cbdrv_" ++ Uniq ++ "@127.0.0.1"), longnames]),
    erlang:set_cookie(node(), bench),
    {ok, _, Peer} = peer:start_link(#{name => list_to_atom("cbpeer_" ++ Uniq), host => "127.0.0.1", longnames => true,
                                      args => ["-setcookie", "bench"]}),
    Table = fun() -> spawn(fun() -> ets:new(t, [named_table, public, {read_concurrency, true}]), receive stop -> ok end end) end,
    Table(),
    %% On the peer (where this script's funs are not loaded): a sleeper inherits the table.
    Heir = spawn(Peer, timer, sleep, [infinity]),
    t = rpc:call(Peer, ets, new, [t, [named_table, public, {read_concurrency, true}, {heir, Heir, none}]]),
    ok = wait(fun() -> rpc:call(Peer, ets, info, [t, size]) =:= 0 end),
    [true = rpc:call(Peer, ets, insert, [t, {K, K}]) || K <- lists:seq(1, 1000)],
    true = ets:insert(t, {<<"hot">>, <<"value">>}),
    Local = best(5, fun() -> rate(1, 1000000, fun(_) -> [{_, _}] = ets:lookup(t, <<"hot">>) end) end),
    metric(cache_get_local, Local),
    Get = fun(I) -> [{_, _}] = rpc:call(Peer, ets, lookup, [t, 1 + I rem 1000]) end,
    metric(cache_get_remote, best(3, fun() -> rate(1, 20000, Get) end)),
    metric(cache_get_remote_x8, best(3, fun() -> rate(8, 10000, Get) end)),
    Put = fun(I) -> true = ets:insert(t, {I, I}), true = rpc:call(Peer, ets, insert, [t, {I, I}]) end,
    metric(cache_put_replicated, best(3, fun() -> rate(1, 20000, Put) end)),
    metric(cache_put_replicated_x8, best(3, fun() -> rate(8, 10000, Put) end)),
    PutRemote = fun(I) -> true = rpc:call(Peer, ets, insert, [t, {1 + I rem 1000, I}]) end,
    metric(cache_put_partitioned, best(3, fun() -> rate(1, 20000, PutRemote) end)),
    metric(cache_put_partitioned_x8, best(3, fun() -> rate(8, 10000, PutRemote) end)),
    halt(0).

metric(Name, V) -> io:format("side=beam metric=~s value=~.6g unit=ops/s~n", [Name, float(V)]).

best(N, F) -> lists:max([F() || _ <- lists:seq(1, N)]).

%% Callers processes each run Per operations Op(I): the rate of all of them together.
rate(Callers, Per, Op) ->
    Me = self(),
    T0 = erlang:monotonic_time(microsecond),
    [spawn_link(fun() -> [Op(C * Per + I) || I <- lists:seq(1, Per)], Me ! done end) || C <- lists:seq(0, Callers - 1)],
    [receive done -> ok end || _ <- lists:seq(1, Callers)],
    Callers * Per / ((erlang:monotonic_time(microsecond) - T0) / 1.0e6).

wait(F) -> wait(F, 100).
wait(_, 0) -> timeout;
wait(F, N) -> case F() of true -> ok; _ -> receive after 50 -> wait(F, N - 1) end end.
