#!/usr/bin/env escript
%% -*- erlang -*-
-mode(compile).
%% BEAM side of the process benchmark (same shapes as bench/process_bench.cpp): local ping-pong,
%% spawn rate (each child tells a collector it ran), memory per process waiting in receive.

main(_) ->
    metric(local_pingpong, best(fun() -> ping_pong(200000) end), "roundtrips/s"),
    metric(spawn, best(fun() -> spawn_rate(100000) end), "procs/s"),
    metric(idle_process_memory, idle_memory(100000), "bytes"),
    halt(0).

best(F) -> lists:max([F() || _ <- lists:seq(1, 5)]).

metric(Name, Value, Unit) ->
    io:format("side=beam metric=~s value=~.6g unit=~s~n", [Name, float(Value), Unit]).

ping_pong(Rounds) ->
    Pong = spawn(fun Loop() -> receive {From, M} -> From ! M, Loop(); stop -> ok end end),
    Self = self(),
    T0 = erlang:monotonic_time(),
    spawn(fun() -> ping(Pong, Rounds), Pong ! stop, Self ! done end),
    receive done -> ok end,
    Rounds / seconds(T0).

ping(_Pong, 0) -> ok;
ping(Pong, N) -> Pong ! {self(), N}, receive _ -> ping(Pong, N - 1) end.

spawn_rate(N) ->
    Self = self(),
    T0 = erlang:monotonic_time(),
    spawn(fun() ->
              Parent = self(),
              [spawn(fun() -> Parent ! [] end) || _ <- lists:seq(1, N)],
              [receive [] -> ok end || _ <- lists:seq(1, N)],
              Self ! done
          end),
    receive done -> ok end,
    N / seconds(T0).

idle_memory(N) ->
    erlang:garbage_collect(),
    Before = erlang:memory(processes),
    Pids = [spawn(fun() -> receive _ -> ok end end) || _ <- lists:seq(1, N)],
    After = erlang:memory(processes),
    [P ! go || P <- Pids],
    (After - Before) / N.

seconds(T0) ->
    erlang:convert_time_unit(erlang:monotonic_time() - T0, native, microsecond) / 1.0e6.
