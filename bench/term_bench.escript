#!/usr/bin/env escript
%% -*- erlang -*-
-mode(compile).
%% BEAM side of the term benchmark: builds the two benchmark terms, writes them as ETF for the
%% hypha side (so both measure the same terms), and times term_to_binary/binary_to_term on them.
%% Usage: escript term_bench.escript DIR

main([Dir]) ->
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    Map = maps:from_list([{list_to_atom(lists:flatten(io_lib:format("key~2..0b", [I]))), value(I)}
                          || I <- lists:seq(1, 20)]),
    List = [{I, ok, I * 0.5} || I <- lists:seq(1, 100000)],
    MapBin = term_to_binary(Map),
    ListBin = term_to_binary(List),
    ok = file:write_file(filename:join(Dir, "map.etf"), MapBin),
    ok = file:write_file(filename:join(Dir, "list.etf"), ListBin),
    run(map20, Map, MapBin, 1),
    run(tuples100k, List, ListBin, 100000),
    halt(0).

value(I) when I rem 4 =:= 0 -> << <<((I + J) rem 256)>> || J <- lists:seq(1, 100) >>;
value(I) when I rem 4 =:= 1 -> (1 bsl 80) + I * 1234567;
value(I) when I rem 4 =:= 2 -> I * 1.25;
value(I) -> [I, I + 1, I + 2].

run(Name, Term, Bin, Elements) ->
    MB = byte_size(Bin) / 1.0e6,
    Enc = best(fun() -> term_to_binary(Term) end),
    metric(Name, "encode_ops", Enc, "ops/s"),
    metric(Name, "encode_terms", Enc * Elements, "terms/s"),
    metric(Name, "encode_mb", Enc * MB, "MB/s"),
    Dec = best(fun() -> binary_to_term(Bin) end),
    metric(Name, "decode_ops", Dec, "ops/s"),
    metric(Name, "decode_terms", Dec * Elements, "terms/s"),
    metric(Name, "decode_mb", Dec * MB, "MB/s").

metric(Name, What, Value, Unit) ->
    io:format("side=beam metric=~s_~s value=~.6g unit=~s~n", [Name, What, float(Value), Unit]).

%% Same method as the C++ side: rounds of 0.3 s, the best round's rate.
best(F) -> lists:max([round_rate(F) || _ <- lists:seq(1, 5)]).

round_rate(F) ->
    Start = erlang:monotonic_time(),
    loop(F, Start, 0).

loop(F, Start, N) ->
    F(),
    Elapsed = erlang:convert_time_unit(erlang:monotonic_time() - Start, native, microsecond) / 1.0e6,
    case Elapsed >= 0.3 of
        true -> (N + 1) / Elapsed;
        false -> loop(F, Start, N + 1)
    end.
