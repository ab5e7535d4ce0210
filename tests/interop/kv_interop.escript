#!/usr/bin/env escript
%% -*- erlang -*-
-mode(compile).
%%
%% The KV router of Elixir's guide on hypha: two `hypha kv --config` nodes with the guide's
%% a-m / n-z table plus an Elixir node owning "0-9" (reached by rpc), driven through their text
%% servers and `hypha rpc`, as a user would.
%% Usage (ERL_EPMD_PORT set to a port of this test's own): escript kv_interop.escript HYPHA DIR
%%
%% Cases: buckets "hello" and "world" land on different nodes through either node's server; the
%% kv_router:route export from the CLI (owner name, "could not find entry for" with exit 1); an
%% Elixir owner reached by rpc; bad lines get error lines while the connection and node go on;
%% 20 clients at once; SIGHUP reloads the table, and a bad file keeps the old one; a node whose
%% config asks for consistent hashing ([routing.hash]) spreads buckets over its ring.

main([Hypha, Dir]) ->
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    os:getenv("ERL_EPMD_PORT") =/= false orelse fail_now("ERL_EPMD_PORT must be set for isolation"),
    Uniq = os:getpid(),
    put(hypha, Hypha), put(dir, Dir), put(cookie, "kv_cookie"), put(os_pids, []),
    Foo = "foo_" ++ Uniq ++ "@127.0.0.1",
    Bar = "bar_" ++ Uniq ++ "@127.0.0.1",
    Ex = "ex_" ++ Uniq ++ "@127.0.0.1",
    put(names, {Foo, Bar, Ex}),
    Table = [{"a-m", Foo}, {"n-z", Bar}, {"0-9", Ex}],
    {FooPort, FooKv} = start_kv("foo", Foo, Table),
    {_, BarKv} = start_kv("bar", Bar, Table),
    put(foo_port, FooPort), put(kv_ports, {FooKv, BarKv}),
    Elixir = os:find_executable("elixir"),
    _ = start_port(Elixir, ["--name", Ex, "--cookie", get(cookie), "-e", "IO.puts(\"ready\"); receive do :stop -> :ok end"],
                   <<"ready">>),
    Cases = [fun buckets_land_on_their_owners/0, fun route_from_the_cli/0, fun elixir_owner_by_rpc/0,
             fun bad_lines_and_many_clients/0, fun sighup_reloads_the_table/0, fun hash_ring_config/0],
    Results = [run_case(C) || C <- Cases],
    cleanup(),
    Failed = [R || R <- Results, R =/= ok],
    io:format("kv interop: ~b cases, ~b failed~n", [length(Results), length(Failed)]),
    halt(case Failed of [] -> 0; _ -> 1 end);
main(_) ->
    io:format("usage: kv_interop.escript HYPHA_BINARY WORK_DIR~n"),
    halt(2).

run_case(F) ->
    {name, Name} = erlang:fun_info(F, name),
    T0 = erlang:monotonic_time(millisecond),
    R = try F() of
            ok -> ok;
            Other -> {fail, Other}
        catch
            C:E:St -> {fail, {C, E, hd(St)}}
        end,
    Ms = erlang:monotonic_time(millisecond) - T0,
    case R of
        ok -> io:format("ok   ~s (~b ms)~n", [Name, Ms]);
        {fail, Why} -> io:format("FAIL ~s: ~p~n", [Name, Why])
    end,
    R.

fail_now(Why) ->
    io:format("FAIL ~s~n", [Why]),
    cleanup(),
    halt(1).

cleanup() ->
    [os:cmd("kill -9 " ++ integer_to_list(P) ++ " 2>/dev/null") || P <- get(os_pids)],
    ok.

config(Name, Table) ->
    ["[node]\nname = \"", Name, "\"\ncookie = \"", get(cookie), "\"\n[kv]\nport = 0\n[routing]\n",
     [["\"", R, "\" = \"", N, "\"\n"] || {R, N} <- Table]].

start_kv(Short, Name, Table) ->
    File = filename:join(get(dir), Short ++ ".toml"),
    ok = file:write_file(File, config(Name, Table)),
    put({file, Short}, File),
    Port = start_port(get(hypha), ["kv", "--config", File], <<"started">>),
    {ok, Line} = get({line, Port}),
    {match, [Kv]} = re:run(Line, "kv port ([0-9]+)", [{capture, all_but_first, list}]),
    {ok, _} = expect_line(Port, <<"routing table">>, 5000),  % the table it started with
    {Port, list_to_integer(Kv)}.

start_port(Exe, Args, Ready) ->
    Port = open_port({spawn_executable, Exe}, [{args, Args}, binary, {line, 65536}, exit_status, stderr_to_stdout]),
    {os_pid, OsPid} = erlang:port_info(Port, os_pid),
    put(os_pids, [OsPid | get(os_pids)]),
    R = expect_line(Port, Ready, 15000),
    {ok, _} = R,
    put({line, Port}, R),
    Port.

expect_line(Port, Text, Timeout) ->
    receive
        {Port, {data, {eol, Line}}} ->
            case binary:match(Line, Text) of
                nomatch -> expect_line(Port, Text, Timeout);
                _ -> {ok, Line}
            end;
        {Port, {exit_status, St}} -> {exited, St}
    after Timeout -> timeout
    end.

hypha(Args) ->
    Port = open_port({spawn_executable, get(hypha)},
                     [{args, Args ++ ["--cookie", get(cookie)]}, binary, exit_status, stderr_to_stdout]),
    collect(Port, []).

collect(Port, Acc) ->
    receive
        {Port, {data, D}} -> collect(Port, [D | Acc]);
        {Port, {exit_status, St}} -> {St, string:trim(binary_to_list(iolist_to_binary(lists:reverse(Acc))))}
    after 30000 -> {timeout, iolist_to_binary(lists:reverse(Acc))}
    end.

%% A text-protocol session: each command and the reply lines it got (a GET has two when found).
session(KvPort, Commands) ->
    {ok, S} = gen_tcp:connect({127, 0, 0, 1}, KvPort, [binary, {packet, line}, {active, false}]),
    Replies = [command(S, C) || C <- Commands],
    gen_tcp:close(S),
    Replies.

command(S, C) ->
    ok = gen_tcp:send(S, [C, "\r\n"]),
    {ok, L1} = gen_tcp:recv(S, 0, 10000),
    case {C, L1} of
        {"GET" ++ _, <<"NOT FOUND", _/binary>>} -> L1;
        {"GET" ++ _, <<"ERROR", _/binary>>} -> L1;
        {"GET" ++ _, _} -> {ok, L2} = gen_tcp:recv(S, 0, 10000), <<L1/binary, L2/binary>>;
        _ -> L1
    end.

expect(Expected, Got) ->
    case Got of
        Expected -> ok;
        _ -> {expected, Expected, got, Got}
    end.

all_ok(Results) ->
    case [R || R <- Results, R =/= ok] of
        [] -> ok;
        Bad -> Bad
    end.

%% ------------------------------------------------------------------------------------------
%% cases

buckets_land_on_their_owners() ->
    {FooKv, BarKv} = get(kv_ports),
    {Foo, Bar, _} = get(names),
    A = session(FooKv, ["CREATE hello", "CREATE world", "PUT hello k1 v1", "PUT world k2 v2"]),
    B = session(BarKv, ["GET hello k1", "GET world k2", "DELETE world k2", "GET world k2", "GET nosuch k"]),
    all_ok([expect([<<"OK\r\n">>, <<"OK\r\n">>, <<"OK\r\n">>, <<"OK\r\n">>], A),
            expect([<<"v1\r\nOK\r\n">>, <<"v2\r\nOK\r\n">>, <<"OK\r\n">>, <<"\r\nOK\r\n">>, <<"NOT FOUND\r\n">>], B),
            expect({0, "[<<\"hello\">>]"}, hypha(["rpc", Foo, "kv", "buckets"])),
            expect({0, "[<<\"world\">>]"}, hypha(["rpc", Bar, "kv", "buckets"]))]).

route_from_the_cli() ->
    {Foo, Bar, _} = get(names),
    {Status, Out} = hypha(["rpc", Foo, "kv_router", "route", "[<<\"Zed\">>, erlang, node, []]"]),
    all_ok([expect({0, "'" ++ Bar ++ "'"}, hypha(["rpc", Foo, "kv_router", "route", "[<<\"world\">>, erlang, node, []]"])),
            expect({0, "'" ++ Foo ++ "'"}, hypha(["rpc", Bar, "kv_router", "route", "[<<\"hello\">>, erlang, node, []]"])),
            expect({1, true}, {Status, string:find(Out, "could not find entry for") =/= nomatch
                                       andalso lists:prefix("{badrpc,", Out)})]).

elixir_owner_by_rpc() ->
    {Foo, _, Ex} = get(names),
    expect({0, "'" ++ Ex ++ "'"}, hypha(["rpc", Foo, "kv_router", "route", "[<<\"1x\">>, erlang, node, []]"])).

bad_lines_and_many_clients() ->
    {FooKv, BarKv} = get(kv_ports),
    Bad = session(FooKv, ["FOO bar", "", "PUT onlybucket", "GET Zed k", "CREATE hello"]),
    [U1, U2, U3, RouteErr, Ok] = Bad,
    Self = self(),
    N = 20,
    [spawn(fun() ->
               Key = "k" ++ integer_to_list(I),
               Port = case I rem 2 of 0 -> FooKv; 1 -> BarKv end,
               Self ! {client, session(Port, ["PUT world " ++ Key ++ " " ++ Key, "GET world " ++ Key])}
           end) || I <- lists:seq(1, N)],
    Answers = [receive {client, R} -> R after 20000 -> timeout end || _ <- lists:seq(1, N)],
    Good = [A || [<<"OK\r\n">>, <<V/binary>>] = A <- Answers, binary:match(V, <<"OK\r\n">>) =/= nomatch],
    %% Lines sent together are answered in order; a line past 64 KiB gets an error and the
    %% connection ends, and the server goes on serving.
    {ok, P} = gen_tcp:connect({127, 0, 0, 1}, FooKv, [binary, {packet, raw}, {active, false}]),
    ok = gen_tcp:send(P, "PUT hello a 1\r\nGET hello a\r\nNOPE\r\n"),
    Pipelined = recv_exactly(P, byte_size(<<"OK\r\n1\r\nOK\r\nUNKNOWN COMMAND\r\n">>)),
    ok = gen_tcp:send(P, binary:copy(<<"x">>, 70000)),
    TooLong = recv_until_closed(P, <<>>),
    After = session(FooKv, ["GET hello a"]),
    all_ok([expect(<<"OK\r\n1\r\nOK\r\nUNKNOWN COMMAND\r\n">>, Pipelined),
            expect(<<"ERROR line too long\r\n">>, TooLong),
            expect([<<"1\r\nOK\r\n">>], After),expect([<<"UNKNOWN COMMAND\r\n">>, <<"UNKNOWN COMMAND\r\n">>, <<"UNKNOWN COMMAND\r\n">>],
                   [U1, U2, U3]),
            expect(true, binary:match(RouteErr, <<"could not find entry for">>) =/= nomatch),
            expect(<<"OK\r\n">>, Ok),
            expect(N, length(Good))]).

recv_exactly(S, N) ->
    {ok, B} = gen_tcp:recv(S, N, 10000),
    B.

recv_until_closed(S, Acc) ->
    case gen_tcp:recv(S, 0, 10000) of
        {ok, B} -> recv_until_closed(S, <<Acc/binary, B/binary>>);
        {error, closed} -> Acc
    end.

sighup_reloads_the_table() ->
    {Foo, Bar, Ex} = get(names),
    File = get({file, "foo"}),
    FooPort = get(foo_port),
    {os_pid, OsPid} = erlang:port_info(FooPort, os_pid),
    %% foo now owns every letter.
    ok = file:write_file(File, config(Foo, [{"a-z", Foo}, {"0-9", Ex}])),
    os:cmd("kill -HUP " ++ integer_to_list(OsPid)),
    {ok, Reloaded} = expect_line(FooPort, <<"routing table">>, 5000),
    R1 = hypha(["rpc", Foo, "kv_router", "route", "[<<\"world\">>, erlang, node, []]"]),
    %% A broken file: the table stays as it was, with the reason logged.
    ok = file:write_file(File, "[node\nname = "),
    os:cmd("kill -HUP " ++ integer_to_list(OsPid)),
    {ok, Kept} = expect_line(FooPort, <<"routing table">>, 5000),
    R2 = hypha(["rpc", Foo, "kv_router", "route", "[<<\"world\">>, erlang, node, []]"]),
    all_ok([expect(true, binary:match(Reloaded, <<"reloaded">>) =/= nomatch),
            expect({0, "'" ++ Foo ++ "'"}, R1),
            expect(true, binary:match(Kept, <<"kept">>) =/= nomatch),
            expect({0, "'" ++ Foo ++ "'"}, R2),
            expect({0, "'" ++ Bar ++ "'"}, hypha(["rpc", Bar, "kv_router", "route", "[<<\"world\">>, erlang, node, []]"]))]).

%% [routing.hash]: a third kv node hashes bucket names over itself (weight 3) and foo (weight 1).
hash_ring_config() ->
    {Foo, _, _} = get(names),
    Hash = "hash_" ++ os:getpid() ++ "@127.0.0.1",
    File = filename:join(get(dir), "hash.toml"),
    ok = file:write_file(File, ["[node]\nname = \"", Hash, "\"\ncookie = \"", get(cookie), "\"\n[kv]\nport = 0\n",
                                "[routing.hash]\nvnodes = 64\nnodes = { \"", Hash, "\" = 3, \"", Foo, "\" = 1 }\n"]),
    Port = start_port(get(hypha), ["kv", "--config", File], <<"started">>),
    {ok, Table} = expect_line(Port, <<"routing table">>, 5000),
    Owners = [begin
                  {0, O} = hypha(["rpc", Hash, "kv_router", "route",
                                  "[<<\"b" ++ integer_to_list(I) ++ "\">>, erlang, node, []]"]),
                  O
              end || I <- lists:seq(1, 40)],
    Mine = length([O || O <- Owners, O =:= "'" ++ Hash ++ "'"]),
    Theirs = length([O || O <- Owners, O =:= "'" ++ Foo ++ "'"]),
    all_ok([expect(true, binary:match(Table, <<"hash ring">>) =/= nomatch),
            expect(40, Mine + Theirs),
            expect(true, Mine > Theirs andalso Theirs > 0)]).
