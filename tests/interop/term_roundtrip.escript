#!/usr/bin/env escript
%% -*- erlang -*-
%%
%% Interop test of hypha's term layer against the real Erlang runtime running this script.
%% Usage: escript term_roundtrip.escript HYPHA_BINARY WORK_DIR
%%
%% For every term of the corpus, and for each way OTP can encode it (default, minor_version 0
%% with legacy FLOAT_EXT and Latin-1 atoms, minor_version 2, compressed):
%%   1. `hypha term decode --etf` re-encodes it; binary_to_term of that must be =:= the term.
%%   2. `hypha term decode` prints it; Erlang must parse the text back to a term =:= the original,
%%      and where OTP's own printing is deterministic the text must equal io_lib:format("~tp").
%%   3. `hypha term encode TEXT` on OTP's printed text must give a binary that decodes =:= the term.
%% Then malformed inputs must make hypha exit non-zero with a one-line error.
%% Exits 0 when every check passes, 1 otherwise, listing each failure.

main([Hypha, Dir]) ->
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    Corpus = corpus(),
    Failures = lists:append([check_term(Hypha, Dir, Name, Kind, T) || {Name, Kind, T} <- Corpus])
        ++ check_errors(Hypha, Dir),
    Checked = length(Corpus),
    case Failures of
        [] ->
            io:format("term interop: ~b terms, all checks passed~n", [Checked]),
            halt(0);
        _ ->
            [io:format("FAIL ~ts~n", [F]) || F <- Failures],
            io:format("term interop: ~b failures over ~b terms~n", [length(Failures), Checked]),
            halt(1)
    end;
main(_) ->
    io:format("usage: term_roundtrip.escript HYPHA_BINARY WORK_DIR~n"),
    halt(2).

%% A pid, port or reference of another node, built from its external form.
node_atom(Node) ->
    B = atom_to_binary(Node, utf8),
    <<119, (byte_size(B)):8, B/binary>>.
remote_pid(Node, Id, Serial, Creation) ->
    binary_to_term(<<131, 88, (node_atom(Node))/binary, Id:32, Serial:32, Creation:32>>).
remote_v4_port(Node, Id, Creation) ->
    binary_to_term(<<131, 120, (node_atom(Node))/binary, Id:64, Creation:32>>).
remote_ref(Node, Creation, Words) ->
    binary_to_term(<<131, 90, (length(Words)):16, (node_atom(Node))/binary, Creation:32,
                     (<< <<W:32>> || W <- Words >>)/binary>>).

corpus() ->
    Seq = fun(N) -> lists:seq(1, N) end,
    Bytes = fun(N) -> << <<((I * 7 + 3) rem 256)>> || I <- Seq(N) >> end,
    Deep = lists:foldl(fun(_, Acc) -> [Acc] end, [], Seq(60)),
    BigMap = maps:from_list([{list_to_atom("key" ++ integer_to_list(I)), I} || I <- Seq(40)]),
    Named = [
        {small_ints, [0, 1, 255, 256, -1, 2147483647, -2147483648]},
        {big_ints, [2147483648, -2147483649, 1 bsl 63, -(1 bsl 63), (1 bsl 64) - 1, 1 bsl 64,
                    -(1 bsl 64), 1 bsl 2039, (1 bsl 2040) - 1, 1 bsl 2040, -(1 bsl 4000)]},
        {floats, [0.0, -0.0, 1.5, 0.1, -2.5, 1.0e300, 5.0e-324, 1.7976931348623157e308,
                  123456.789, 1.0e16, 1.0e-5, 12345678901234567.0]},
        {atoms, [ok, '', 'hello world', 'Quoted', 'receive', maybe, hello@world,
                 'a@127.0.0.1', 'it\'s', 'tab\there', list_to_atom(lists:duplicate(255, $x)),
                 list_to_atom([945, 946]), list_to_atom([233, $t, 233]),
                 list_to_atom(lists:duplicate(255, 960))]},
        {binaries, [<<>>, <<"bin">>, <<1, 2, 3>>, <<"é"/utf8>>, <<"π"/utf8>>, <<200, 201>>,
                    <<"a\n\"\\b">>, <<0>>, <<255>>]},
        {large_binary, Bytes(100000)},
        {bitstrings, [<<1:3>>, <<"ab", 3:4>>, <<255, 1:1>>, <<0:7>>]},
        {strings, ["", "abc", "a\nb", "tab\tq\"uote\\", "\e\0", [7, 8, 9, 10, 11, 12, 13],
                   [233, 255], [1000], [$a, 200], "0123456789"]},
        {lists, [[], [1, 2, 3], [a | b], [1, 2 | 3], [[]], Seq(300), lists:seq(1, 70000),
                 [-1], [{}], [1.5, <<"x">>]]},
        {deep_list, Deep},
        {tuples, [{}, {ok, 1}, {{{}}}, list_to_tuple(Seq(300))]},
        {maps, [#{}, #{a => 1}, #{1 => a, 1.0 => b}, #{[] => #{}, <<"k">> => [1]},
                #{{x} => d, "s" => c}]},
        {nested, {ok, [#{name => <<"hypha">>, tags => [a, b], score => 9.5,
                         big => 1 bsl 100, nested => {[1 | x], <<1:5>>, "txt"}}]}}
    ],
    Opaque = [
        {own_pid, self()},
        {local_pid, list_to_pid("<0.85.0>")},
        {remote_pids, [remote_pid('other@host', 85, 2, 3), remote_pid('a@127.0.0.1', 1, 0, 16#ffffffff)]},
        {refs, [make_ref(), remote_ref('n@h', 7, [1, 2, 3]), remote_ref('n@h', 7, [1, 2, 3, 4, 5]),
                remote_ref('n@h', 1, [9])]},
        {ports, [hd(erlang:ports()), remote_v4_port('n@h', 1 bsl 40, 2)]},
        {export_funs, [fun lists:map/2, fun erlang:node/0]},
        {local_fun, fun(X) -> {X, Named} end},
        {mixed_opaque, {self(), make_ref(), [fun lists:sort/1]}}
    ],
    [{N, text, T} || {N, T} <- Named] ++ [{N, opaque, T} || {N, T} <- Opaque]
        ++ [{big_map, unordered_text, BigMap}].

encodings(T) ->
    [{default, term_to_binary(T)},
     {minor0, term_to_binary(T, [{minor_version, 0}])},
     {minor2, term_to_binary(T, [{minor_version, 2}])},
     {compressed, term_to_binary(T, [compressed])}].

check_term(Hypha, Dir, Name, Kind, T) ->
    Label = fun(What) -> io_lib:format("~p ~s", [Name, What]) end,
    RoundTrips = lists:append(
        [begin
             File = filename:join(Dir, io_lib:format("~p-~p.etf", [Name, Enc])),
             ok = file:write_file(File, Bin),
             case run(Hypha, ["term", "decode", "--etf", File]) of
                 {0, Out} ->
                     case catch binary_to_term(Out) of
                         T2 when T2 =:= T -> [];
                         Other -> [Label(io_lib:format("~p: decode --etf gave ~P", [Enc, Other, 12]))]
                     end;
                 {Code, Out} ->
                     [Label(io_lib:format("~p: decode --etf exit ~b: ~ts", [Enc, Code, Out]))]
             end
         end || {Enc, Bin} <- encodings(T)]),
    RoundTrips ++ check_text(Hypha, Dir, Name, Kind, T, Label).

check_text(_Hypha, _Dir, _Name, opaque, _T, _Label) ->
    [];
check_text(Hypha, Dir, Name, Kind, T, Label) ->
    File = filename:join(Dir, io_lib:format("~p-text.etf", [Name])),
    ok = file:write_file(File, term_to_binary(T)),
    Expected = unicode:characters_to_binary([io_lib:format("~100000000tp", [T]), "\n"]),
    Printed = case run(Hypha, ["term", "decode", File]) of
                  {0, Out} -> Out;
                  {Code, Out} -> {error, Code, Out}
              end,
    case Printed of
        {error, C, O} ->
            [Label(io_lib:format("decode exit ~b: ~ts", [C, O]))];
        _ ->
            Same = case Kind of
                       text when Printed =/= Expected ->
                           [Label(io_lib:format("printed~n  ~ts  erl prints~n  ~ts", [Printed, Expected]))];
                       _ -> []
                   end,
            Parsed = case parse(Printed) of
                         {ok, P} when P =:= T -> [];
                         Bad -> [Label(io_lib:format("erl parses hypha's text to ~P", [Bad, 12]))]
                     end,
            %% Long texts go through a file: one argv string is limited to 128 KiB.
            TextFile = filename:join(Dir, io_lib:format("~p.txt", [Name])),
            ok = file:write_file(TextFile, Expected),
            EncodeArgs = case byte_size(Expected) > 60000 of
                             true -> ["term", "encode", "--file", TextFile];
                             false -> ["term", "encode", unicode:characters_to_list(string:trim(Expected))]
                         end,
            Encoded = case run(Hypha, EncodeArgs) of
                          {0, Etf} ->
                              case catch binary_to_term(Etf) of
                                  T3 when T3 =:= T -> [];
                                  Other -> [Label(io_lib:format("encode of erl's text gave ~P", [Other, 12]))]
                              end;
                          {C2, O2} -> [Label(io_lib:format("encode exit ~b: ~ts", [C2, O2]))]
                      end,
            Same ++ Parsed ++ Encoded
    end.

parse(Bin) ->
    Text = unicode:characters_to_list(Bin),
    case erl_scan:string(string:trim(Text) ++ ".") of
        {ok, Tokens, _} -> erl_parse:parse_term(Tokens);
        Err -> Err
    end.

%% Malformed input: non-zero exit and exactly one line on stderr; the output must say why.
check_errors(Hypha, Dir) ->
    Cases = [{empty, <<>>}, {bad_version, <<130, 106>>}, {unknown_tag, <<131, 200>>},
             {truncated, <<131, 109, 0, 0, 0, 10, 1, 2>>}, {trailing, <<131, 106, 106>>},
             {huge_list, <<131, 108, 255, 255, 255, 255, 106>>},
             {bad_zlib, <<131, 80, 0, 0, 0, 10, 1, 2, 3>>},
             {deep, list_to_binary([131, lists:duplicate(100000, [104, 1]), 106])}],
    Decode = lists:append(
        [begin
             File = filename:join(Dir, io_lib:format("bad-~p.etf", [Name])),
             ok = file:write_file(File, Bin),
             one_line_error(Name, run_stderr(Hypha, ["term", "decode", File]))
         end || {Name, Bin} <- Cases]),
    Encode = lists:append(
        [one_line_error({encode, Text}, run_stderr(Hypha, ["term", "encode", Text]))
         || Text <- ["{ok,", "[1,2", "'unterminated", "Var", "1.0e999", "{a} b", "<<1:3/float>>"]]),
    Decode ++ Encode.

one_line_error(_Name, {Code, Out}) when Code =/= 0 ->
    case binary:split(string:trim(Out), <<"\n">>, [global]) of
        [<<"hypha: ", _/binary>>] -> [];
        _ -> [io_lib:format("~p: expected one error line, got ~p", [_Name, Out])]
    end;
one_line_error(Name, {0, Out}) ->
    [io_lib:format("~p: accepted malformed input, printed ~p", [Name, Out])].

run(Exe, Args) -> run(Exe, Args, []).
run_stderr(Exe, Args) -> run(Exe, Args, [stderr_to_stdout]).

run(Exe, Args, Extra) ->
    Port = open_port({spawn_executable, Exe}, [{args, Args}, binary, exit_status, use_stdio | Extra]),
    collect(Port, []).

collect(Port, Acc) ->
    receive
        {Port, {data, D}} -> collect(Port, [D | Acc]);
        {Port, {exit_status, S}} -> {S, iolist_to_binary(lists:reverse(Acc))}
    after 60000 ->
        {timeout, iolist_to_binary(lists:reverse(Acc))}
    end.
