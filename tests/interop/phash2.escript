#!/usr/bin/env escript
%% -*- erlang -*-
%% Interop test of hypha's erlang:phash2/1,2 against a real erl's: a corpus of terms of every kind
%% (edge cases by hand, then random terms) is hashed here and by hypha (tests/interop/term_helper.cpp);
%% phash2/1, phash2/2 with 2^32 and with 1000 must agree on every term.
%% Usage: escript phash2.escript TERM_HELPER_BINARY WORK_DIR
-mode(compile).

main([Hasher, Dir]) ->
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    rand:seed(exsss, {7, 8, 9}),
    Terms = edge_cases() ++ [random_term(4) || _ <- lists:seq(1, 4000)],
    File = filename:join(Dir, "terms.etf"),
    ok = file:write_file(File, term_to_binary(Terms)),
    Port = open_port({spawn_executable, Hasher}, [{args, ["phash2", File]}, binary, exit_status]),
    {0, Out} = collect(Port, []),
    Theirs = binary_to_term(Out),
    Ours = [{erlang:phash2(T), erlang:phash2(T, 1 bsl 32), erlang:phash2(T, 1000)} || T <- Terms],
    Kinds = lists:usort([kind(T) || T <- Terms]),
    case [{T, O, H} || {T, O, H} <- lists:zip3(Terms, Ours, Theirs), O =/= H] of
        [] ->
            io:format("phash2: ~b terms (~p), same hashes as erl~n", [length(Terms), Kinds]),
            halt(0);
        Diff ->
            io:format("FAIL ~b of ~b terms hash differently; first (term, erl, hypha):~n~p~n",
                      [length(Diff), length(Terms), lists:sublist(Diff, 8)]),
            halt(1)
    end.

kind(T) when is_integer(T) -> integer;
kind(T) when is_float(T) -> float;
kind(T) when is_atom(T) -> atom;
kind(T) when is_binary(T) -> binary;
kind(T) when is_bitstring(T) -> bitstring;
kind([]) -> nil;
kind(T) when is_list(T) -> list;
kind(T) when is_tuple(T) -> tuple;
kind(T) when is_map(T) -> map;
kind(T) when is_pid(T) -> pid;
kind(T) when is_port(T) -> port;
kind(T) when is_reference(T) -> reference;
kind(T) when is_function(T) -> 'fun'.

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

edge_cases() ->
    Ints = [0, 1, -1, 255, 256, (1 bsl 27) - 1, 1 bsl 27, -(1 bsl 27), -(1 bsl 27) - 1,
            (1 bsl 31) - 1, 1 bsl 31, -(1 bsl 31), (1 bsl 32) - 1, 1 bsl 32, (1 bsl 59) - 1,
            1 bsl 59, -(1 bsl 59), (1 bsl 63) - 1, 1 bsl 63, -(1 bsl 63), (1 bsl 64) - 1,
            1 bsl 64, -(1 bsl 64), 1 bsl 95, 1 bsl 96, -(1 bsl 127), 1 bsl 200, -(1 bsl 300) + 7],
    Floats = [0.0, -0.0, 1.0, -1.5, 1.0e300, -2.5e-300, 3.14159, 5.0e-324],
    Atoms = ['', a, ok, true, 'Elixir.Foo', 'é', 'ÿ', 'π', 'ok✓', 'a\x{1F600}b',
             list_to_atom(lists:duplicate(255, $x))],
    Bins = [<<>>, <<0>>, <<"abc">>, <<"hello world!">>, <<"hello world!!">>,
            list_to_binary(lists:seq(0, 255)), <<1:1>>, <<0:7>>, <<255, 3:2>>,
            <<"abcdefghijkl", 5:3>>, binary:part(<<"xabcdef">>, 1, 5)],
    Lists = [[], [a], [1], [1, 2, 3], [1, 2, 3, 4], [1, 2, 3, 4, 5], "hello", [256],
             [1, 2, a, 3, 4], [a | b], [1 | 2], [1, 2 | <<3>>], [[]], [[1], [2, [3]]],
             "π is ∞", lists:seq(1, 300)],
    Tuples = [{}, {a}, {1, 2}, {{}, {{}}}, {a, [b], <<"c">>, #{d => e}}],
    Maps = [#{}, #{a => 1}, #{1 => a}, #{a => 1, b => 2}, #{b => 2, a => 1},
            maps:from_list([{I, I * I} || I <- lists:seq(1, 40)]),
            maps:from_list([{integer_to_binary(I), [I]} || I <- lists:seq(1, 100)]),
            #{#{} => [], [] => #{}}],
    Pids = [self(), pid('a@h', 0, 0, 0), pid('a@h', 1, 0, 1), pid('b@h', 1, 5, 7),
            pid('a@h', 32767, 8191, 3), pid('a@h', 32768, 0, 1), pid('a@h', (1 bsl 28) - 1, 0, 1)],
    Ports = [hd(erlang:ports()), port('a@h', 0, 1), port('a@h', 1, 1), port('b@h', 77, 9),
             port('a@h', (1 bsl 32) + 5, 1), port('a@h', 1 bsl 40, 2)],
    Refs = [make_ref(), make_ref(), ref('a@h', 1, [1, 2, 3]), ref('a@h', 1, [3, 2, 1]),
            ref('b@h', 9, [123456, 0, 0]), ref('a@h', 1, [7]), ref('a@h', 1, [1, 2, 3, 4, 5])],
    X = rand:uniform(1000),
    Funs = [fun lists:map/2, fun erlang:node/0, fun(A) -> A end, fun(A) -> {A, X} end,
            fun(A, B) -> [A, B, X, Ints] end],
    Ints ++ Floats ++ Atoms ++ Bins ++ Lists ++ Tuples ++ Maps ++ Pids ++ Ports ++ Refs ++ Funs
        ++ [{T} || T <- Ints ++ Atoms ++ Bins] ++ [[T] || T <- Floats ++ Pids ++ Refs].

random_term(0) -> random_leaf();
random_term(D) ->
    case rand:uniform(10) of
        1 -> list_to_tuple([random_term(D - 1) || _ <- lists:seq(1, rand:uniform(5) - 1)]);
        2 -> [random_term(D - 1) || _ <- lists:seq(1, rand:uniform(6) - 1)];
        3 -> [random_term(D - 1) | random_leaf()];
        4 -> maps:from_list([{random_term(D - 1), random_term(D - 1)} || _ <- lists:seq(1, rand:uniform(5) - 1)]);
        5 -> [rand:uniform(256) - 1 || _ <- lists:seq(1, rand:uniform(12))] ++ [random_term(D - 1)];
        _ -> random_leaf()
    end.

random_leaf() ->
    case rand:uniform(12) of
        1 -> rand:uniform(1000) - 500;
        2 -> rand:uniform(1 bsl 30) - (1 bsl 29);
        3 -> (rand:uniform(1 bsl 70) - (1 bsl 69)) * (rand:uniform(3) - 2);
        4 -> (rand:uniform() - 0.5) * math:pow(10, rand:uniform(40) - 20);
        5 -> list_to_atom([$a + rand:uniform(26) - 1 || _ <- lists:seq(1, rand:uniform(8))]);
        6 -> list_to_atom([rand:uniform(600) || _ <- lists:seq(1, rand:uniform(5))]);
        7 -> rand:bytes(rand:uniform(40) - 1);
        8 -> <<(rand:bytes(rand:uniform(20) - 1))/binary, (rand:uniform(127)):(rand:uniform(7))>>;
        9 -> [rand:uniform(3000) || _ <- lists:seq(1, rand:uniform(10))];
        10 -> pid('n@h', rand:uniform(1 bsl 28) - 1, rand:uniform(8191), rand:uniform(1000));
        11 -> ref('n@h', rand:uniform(1000), [rand:uniform(1 bsl 18) - 1, rand:uniform(1 bsl 32) - 1, rand:uniform(1 bsl 32) - 1]);
        12 -> port('n@h', rand:uniform(1 bsl 40), rand:uniform(1000))
    end.

collect(Port, Acc) ->
    receive
        {Port, {data, D}} -> collect(Port, [D | Acc]);
        {Port, {exit_status, S}} -> {S, iolist_to_binary(lists:reverse(Acc))}
    after 30000 -> {timeout, <<>>}
    end.
