#!/usr/bin/env escript
%% -*- erlang -*-
-mode(compile).
-behaviour(gen_server).
-export([init/1, handle_call/3, handle_cast/2]).
%% OTP benchmark, BEAM side: the same roles as bench/otp_bench.cpp.
%%   serve NAME | call NODE COUNT LABEL | rpc NODE COUNT LABEL | task NODE COUNT LABEL
%% call: sequential gen_server:call({bench_server, Node}, ping) latencies (p50, p99), then 8
%% callers at once (calls/s). rpc: the same with rpc:call(Node, erlang, node, []). task: Elixir's
%% Task.Supervisor.async({bench_tasks, Node}, erlang, node, []) |> Task.await() (Elixir's own
%% modules, loaded from its installation).

main(["serve", Name]) ->
    start(list_to_atom(Name)),
    {ok, _} = gen_server:start({local, bench_server}, ?MODULE, [], []),
    elixir(),
    {ok, Sup} = 'Elixir.Task.Supervisor':start_link([{name, bench_tasks}]),
    unlink(Sup),
    io:format("ready~n"),
    receive never -> ok end;
main([Mode, Node, Count, Label]) ->
    start(list_to_atom("bench_otp_" ++ os:getpid() ++ "@127.0.0.1")),
    N = list_to_integer(Count),
    To = list_to_atom(Node),
    pong = net_adm:ping(To),
    Op = case Mode of
             "call" -> fun() -> pong = gen_server:call({bench_server, To}, ping) end;
             "rpc" -> fun() -> To = rpc:call(To, erlang, node, []) end;
             "task" ->
                 elixir(),
                 fun() -> To = 'Elixir.Task':await('Elixir.Task.Supervisor':async({bench_tasks, To}, erlang, node, [])) end
         end,
    [Op() || _ <- lists:seq(1, 200)],  % warm up
    Us = lists:sort([time_us(Op) || _ <- lists:seq(1, N)]),
    metric(Label, Mode ++ "_p50", lists:nth(N div 2, Us), "us"),
    metric(Label, Mode ++ "_p99", lists:nth(N * 99 div 100, Us), "us"),
    Self = self(),
    T0 = erlang:monotonic_time(),
    [spawn(fun() -> [Op() || _ <- lists:seq(1, N)], Self ! done end) || _ <- lists:seq(1, 8)],
    [receive done -> ok end || _ <- lists:seq(1, 8)],
    metric(Label, Mode ++ "_per_s_8way", 8 * N / seconds(T0), "ops/s"),
    halt(0).

elixir() ->
    true = code:add_patha(filename:join([code:root_dir(), "..", "elixir", "lib", "elixir", "ebin"])) orelse
           code:add_patha("/usr/lib/elixir/lib/elixir/ebin").

init([]) -> {ok, nostate}.
handle_call(ping, _From, S) -> {reply, pong, S}.
handle_cast(_, S) -> {noreply, S}.

start(Name) ->
    {ok, _} = net_kernel:start([Name, longnames]),
    erlang:set_cookie(node(), bench).

time_us(Op) ->
    T0 = erlang:monotonic_time(),
    Op(),
    erlang:convert_time_unit(erlang:monotonic_time() - T0, native, microsecond) * 1.0.

metric(Label, Name, Value, Unit) ->
    io:format("side=~s metric=~s value=~.6g unit=~s~n", [Label, Name, float(Value), Unit]).

seconds(T0) ->
    erlang:convert_time_unit(erlang:monotonic_time() - T0, native, microsecond) / 1.0e6.
