#!/usr/bin/env escript
%% -*- erlang -*-
%% The term demo: a real Erlang runtime (this script) and hypha exchange terms as ETF bytes.
%% Every line below is computed on the spot by one side or the other; nothing is made up.
%% Usage: escript terms.escript HYPHA_BINARY WORK_DIR

main([Hypha, Dir]) ->
    io:setopts([{encoding, unicode}]),
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    io:format("~n== Erlang encodes, hypha decodes (hypha term decode)~n"),
    Terms = [{ok, [1, 2, 3]},
             #{name => <<"hypha">>, langs => ["C++", "Erlang"], stars => 1 bsl 70},
             [3.14159, -0.0, 1.0e-10, 'quoted atom', <<"é"/utf8>>, <<1:3>>],
             {self(), make_ref(), fun lists:map/2}],
    lists:foreach(fun(T) -> erl_to_hypha(Hypha, Dir, T) end, Terms),
    io:format("~n== hypha encodes, Erlang decodes (hypha term encode)~n"),
    lists:foreach(fun(Text) -> hypha_to_erl(Hypha, Text) end,
                  ["{reply, <<\"pong\">>, #{latency_us => 42}}",
                   "[16#ff, $a, 1.5e3, \"tab\\there\", 'Élan', <<\"π\"/utf8>>]",
                   "{'EXIT', <'node@127.0.0.1'.85.0>, {badarg, [fun erlang:binary_to_term/1]}}"]),
    io:format("~n== Opaque terms from Erlang, through hypha and back (hypha term decode --etf)~n"),
    Pid = spawn(fun() -> receive stop -> ok end end),
    lists:foreach(fun(T) -> round_trip(Hypha, Dir, T) end,
                  [Pid, make_ref(), hd(erlang:ports()), fun(X) -> X * 2 end,
                   term_to_binary(x)]),
    Pid ! stop,
    io:format("~n== Bad input gets a one-line error and a non-zero exit~n"),
    Bad = filename:join(Dir, "bad.etf"),
    ok = file:write_file(Bad, <<131, 108, 0, 0, 0, 9, 97, 1>>),
    {Code, Out} = run(Hypha, ["term", "decode", Bad], [stderr_to_stdout]),
    io:format("  hypha term decode bad.etf -> exit ~b: ~ts", [Code, Out]),
    halt(0).

erl_to_hypha(Hypha, Dir, T) ->
    File = filename:join(Dir, "from_erl.etf"),
    Bin = term_to_binary(T),
    ok = file:write_file(File, Bin),
    {0, Text} = run(Hypha, ["term", "decode", File], []),
    io:format("  erl   ~ts~n  bytes ~b: ~s~n  hypha ~ts~n", [io_lib:format("~999999tp", [T]), byte_size(Bin),
              hex(Bin), Text]).

hypha_to_erl(Hypha, Text) ->
    {0, Bin} = run(Hypha, ["term", "encode", Text], []),
    T = binary_to_term(Bin),
    io:format("  hypha term encode '~ts'~n  bytes ~b: ~s~n  erl   binary_to_term -> ~ts~n~n",
              [Text, byte_size(Bin), hex(Bin), io_lib:format("~999999tp", [T])]).

round_trip(Hypha, Dir, T) ->
    File = filename:join(Dir, "opaque.etf"),
    ok = file:write_file(File, term_to_binary(T)),
    {0, Back} = run(Hypha, ["term", "decode", "--etf", File], []),
    {0, Text} = run(Hypha, ["term", "decode", File], []),
    io:format("  ~-44ts hypha prints ~ts  back in erl: =:= ~p~n",
              [io_lib:format("~999999tp", [T]), string:trim(Text), binary_to_term(Back) =:= T]).

hex(Bin) when byte_size(Bin) > 24 ->
    [hex(binary:part(Bin, 0, 24)), " ..."];
hex(Bin) ->
    lists:join(" ", [io_lib:format("~2.16.0b", [B]) || <<B>> <= Bin]).

run(Exe, Args, Extra) ->
    Port = open_port({spawn_executable, Exe}, [{args, Args}, binary, exit_status | Extra]),
    collect(Port, []).

collect(Port, Acc) ->
    receive
        {Port, {data, D}} -> collect(Port, [D | Acc]);
        {Port, {exit_status, S}} -> {S, iolist_to_binary(lists:reverse(Acc))}
    after 30000 -> {timeout, iolist_to_binary(lists:reverse(Acc))}
    end.
