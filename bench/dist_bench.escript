#!/usr/bin/env escript
%% -*- erlang -*-
-mode(compile).
%% Distribution benchmark, BEAM side: the same roles and protocol as bench/dist_bench.cpp.
%%   serve NAME | send NODE SIZE COUNT LABEL | pingpong NODE COUNT LABEL

main(["serve", Name]) ->
    start(list_to_atom(Name)),
    register(sink, spawn(fun() -> sink(0) end)),
    register(echo, spawn(fun echo/0)),
    io:format("ready~n"),
    receive never -> ok end;
main(["send", Node, Size, Count, Label]) ->
    start(client_name()),
    N = list_to_integer(Count),
    S = list_to_integer(Size),
    To = {sink, list_to_atom(Node)},
    pong = net_adm:ping(list_to_atom(Node)),
    Bin = binary:copy(<<"x">>, S),
    T0 = erlang:monotonic_time(),
    send_loop(To, Bin, N),
    To ! {done, self()},
    receive {count, N} -> ok after 120000 -> halt(1) end,
    Secs = seconds(T0),
    metric(Label, "msgs_per_s_" ++ Size, N / Secs, "msgs/s"),
    metric(Label, "mb_per_s_" ++ Size, N * S / Secs / 1.0e6, "MB/s"),
    halt(0);
main(["pingpong", Node, Count, Label]) ->
    start(client_name()),
    N = list_to_integer(Count),
    To = {echo, list_to_atom(Node)},
    pong = net_adm:ping(list_to_atom(Node)),
    Us = lists:sort([rtt(To, I) || I <- lists:seq(1, N)]),
    metric(Label, "rtt_p50", lists:nth(N div 2, Us), "us"),
    metric(Label, "rtt_p99", lists:nth(N * 99 div 100, Us), "us"),
    halt(0).

start(Name) ->
    {ok, _} = net_kernel:start([Name, longnames]),
    erlang:set_cookie(node(), bench).

client_name() -> list_to_atom("bench_beam_" ++ os:getpid() ++ "@127.0.0.1").

sink(N) ->
    receive
        {done, From} -> From ! {count, N}, sink(0);
        _ -> sink(N + 1)
    end.

echo() ->
    receive {ping, From, I} -> From ! {pong, I} end,
    echo().

send_loop(_To, _Bin, 0) -> ok;
send_loop(To, Bin, N) -> To ! Bin, send_loop(To, Bin, N - 1).

rtt(To, I) ->
    T0 = erlang:monotonic_time(),
    To ! {ping, self(), I},
    receive {pong, I} -> ok end,
    erlang:convert_time_unit(erlang:monotonic_time() - T0, native, microsecond) * 1.0.

metric(Label, Name, Value, Unit) ->
    io:format("side=~s metric=~s value=~.6g unit=~s~n", [Label, Name, float(Value), Unit]).

seconds(T0) ->
    erlang:convert_time_unit(erlang:monotonic_time() - T0, native, microsecond) / 1.0e6.
