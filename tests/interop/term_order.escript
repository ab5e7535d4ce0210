#!/usr/bin/env escript
%% -*- erlang -*-
%% Interop test of hypha's term order against Erlang's: a shuffled list of terms of every kind is
%% sorted by lists:sort/1 here and by hypha (tests/interop/term_helper.cpp); the results must be =:=.
%% Pairs that Erlang considers equal but not exactly equal (1 and 1.0) are left out: Erlang's sort
%% keeps them in input order, hypha's total order puts the integer first (documented).
%% Usage: escript term_order.escript TERM_HELPER_BINARY WORK_DIR

main([Sorter, Dir]) ->
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    rand:seed(exsss, {1, 2, 3}),
    Terms = corpus(),
    Failures = [Round || Round <- lists:seq(1, 20), not check(Sorter, Dir, shuffle(Terms))],
    case Failures of
        [] -> io:format("term order: ~b terms, 20 shuffles, same order as Erlang~n", [length(Terms)]), halt(0);
        _ -> halt(1)
    end.

check(Sorter, Dir, Terms) ->
    File = filename:join(Dir, "unsorted.etf"),
    ok = file:write_file(File, term_to_binary(Terms)),
    Port = open_port({spawn_executable, Sorter}, [{args, ["sort", File]}, binary, exit_status]),
    {0, Out} = collect(Port, []),
    Theirs = binary_to_term(Out),
    Ours = lists:sort(Terms),
    case Theirs =:= Ours of
        true -> true;
        false ->
            Diff = [{I, A, B} || {I, A, B} <- lists:zip3(lists:seq(1, length(Ours)), Ours, Theirs), A =/= B],
            io:format("FAIL order differs; first differences (position, erl, hypha):~n~p~n",
                      [lists:sublist(Diff, 5)]),
            false
    end.

shuffle(L) -> [X || {_, X} <- lists:sort([{rand:uniform(), X} || X <- L])].

node_atom(Node) ->
    B = atom_to_binary(Node, utf8),
    <<119, (byte_size(B)):8, B/binary>>.
pid(Node, Id, Serial, Creation) ->
    binary_to_term(<<131, 88, (node_atom(Node))/binary, Id:32, Serial:32, Creation:32>>).
port(Node, Id, Creation) ->
    binary_to_term(<<131, 120, (node_atom(Node))/binary, Id:64, Creation:32>>).
ref(Node, Creation, Words) ->
    binary_to_term(<<131, 90, (length(Words)):16, (node_atom(Node))/binary, Creation:32,
                     (<< <<W:32>> || W <- Words >>)/binary>>).

corpus() ->
    Numbers = [-(1 bsl 70), -5, -1.5, 0, 0.5, 1, 2.5, 3, 1 bsl 64, 1.0e30, 1 bsl 200],
    Atoms = ['', a, ab, b, 'B', 'Z', zz, 'é', 'π'],
    Refs = [ref('a@h', 1, [1, 2, 3]), ref('a@h', 1, [3, 2, 1]), ref('b@h', 1, [1, 2, 3]),
            ref('a@h', 2, [1, 2, 3]), ref('a@h', 1, [1, 2, 3, 4, 5]), ref('a@h', 1, [9, 9, 9]),
            ref('a@h', 1, [1, 1, 1, 1, 1]), ref('a@h', 1, [7]), make_ref()],
    Funs = [fun lists:map/2, fun lists:sort/1, fun erlang:node/0],
    Ports = [port('a@h', 1, 1), port('a@h', 2, 1), port('b@h', 1, 1), port('a@h', 1, 2),
             port('a@h', 1 bsl 40, 1)],
    Pids = [pid('a@h', 1, 0, 1), pid('a@h', 2, 0, 1), pid('a@h', 1, 1, 1), pid('b@h', 1, 0, 1),
            pid('a@h', 1, 0, 2), pid('a@h', 2, 1, 1), self()],
    Tuples = [{}, {a}, {a, b}, {b}, {1, 2, 3}, {0, 9, 9}],
    Maps = [#{}, #{a => 1}, #{a => 2}, #{b => 0}, #{a => 1, b => 1}, #{1 => x}, #{1.5 => x}],
    Lists = [[], [a], [a, b], [a | b], [b], [1, 2], [1 | 2], "abc", "abd", [[]]],
    Bins = [<<>>, <<0>>, <<1>>, <<1, 2>>, <<1:1>>, <<0:1>>, <<255, 1:3>>, <<"abc">>],
    Numbers ++ Atoms ++ Refs ++ Funs ++ Ports ++ Pids ++ Tuples ++ Maps ++ Lists ++ Bins.

collect(Port, Acc) ->
    receive
        {Port, {data, D}} -> collect(Port, [D | Acc]);
        {Port, {exit_status, S}} -> {S, iolist_to_binary(lists:reverse(Acc))}
    after 30000 -> {timeout, <<>>}
    end.
