#!/usr/bin/env escript
%% -*- erlang -*-
-mode(compile).
-include("hypha_nodes.hrl").
%%
%% The cluster cache with OS processes and a real OTP 25 node (this script): three
%% `hypha node --config` nodes, each with a replicated cache `rep` and a partitioned one `part`
%% (replicas = 2), driven by the CLI and by rpc from Erlang (hypha_cache:get/2, put/3,4,
%% delete/2, ...). Every acknowledged write is counted back: readable from every node, after a
%% SIGSTOP/SIGCONT of one node (it converges on what was written meanwhile) and after kill -9 of
%% another (nothing acknowledged is lost, and the survivors hold two copies again); SIGTERM of a
%% third hands its keys over before it exits (the last node then holds every key).
%% Usage (ERL_EPMD_PORT set to a port of this test's own): escript cache_interop.escript HYPHA DIR

main([Hypha, Dir]) ->
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    os:getenv("ERL_EPMD_PORT") =/= false orelse fail_now("ERL_EPMD_PORT must be set for isolation"),
    Uniq = os:getpid(),
    put(hypha, Hypha),
    put(cookie, "cache_cookie"),
    put(dir, Dir),
    put(os_pids, []),
    put(dead, []),
    Names = [list_to_atom("hypha_cache" ++ integer_to_list(I) ++ "_" ++ Uniq ++ "@127.0.0.1") || I <- [1, 2, 3]],
    put(names, Names),
    [put({os, N}, start_cache_node(N, Names)) || N <- Names],
    {ok, _} = net_kernel:start([list_to_atom("cache_interop_" ++ Uniq ++ "@127.0.0.1"), longnames]),
    erlang:set_cookie(node(), list_to_atom(get(cookie))),
    [pong = net_adm:ping(N) || N <- Names],
    ok = wait_until(fun() -> lists:all(fun(N) -> ready(N, rep, 3) andalso ready(N, part, 3) end, Names) end, 10000),
    Cases = [fun the_cli_puts_gets_deletes_and_counts/0,
             fun writes_from_erlang_are_readable_from_every_node/0,
             fun a_stopped_node_converges_on_what_was_written_meanwhile/0,
             fun no_acknowledged_write_is_lost_when_a_node_is_killed/0,
             fun a_node_that_gets_sigterm_hands_its_keys_to_the_last_one/0],
    Results = [run_case(C) || C <- Cases],
    cleanup(),
    Failed = [R || R <- Results, R =/= ok],
    io:format("cache interop: ~b cases, ~b failed~n", [length(Results), length(Failed)]),
    halt(case Failed of [] -> 0; _ -> 1 end);
main(_) ->
    io:format("usage: cache_interop.escript HYPHA_BINARY WORK_DIR~n"),
    halt(2).

fail_now(Why) ->
    io:format("FAIL ~s~n", [Why]),
    cleanup(),
    halt(1).

start_cache_node(Name, All) ->
    Others = [["\"", atom_to_list(N), "\", "] || N <- All, N =/= Name],
    start_node(Name, ["[[cache]]\nname = \"rep\"\nmode = \"replicated\"\n"
                      "[[cache]]\nname = \"part\"\nmode = \"partitioned\"\nreplicas = 2\nanti_entropy_ms = 200\n"
                      "[[cache]]\nname = \"one\"\nmode = \"partitioned\"\nreplicas = 1\n"
                      "[cluster]\ndetect_ms = 1000\nstrategies = [\"static\"]\n[cluster.static]\nnodes = [",
                      Others, "]\n"]).

names() -> get(names).
live() -> [N || N <- names(), not lists:member(N, get(dead))].

stats(Node, Cache) -> rpc:call(Node, hypha_cache, stats, [Cache], 5000).
ready(Node, Cache, Members) ->
    case stats(Node, Cache) of
        #{ready := true, members := Members} -> true;
        _ -> false
    end.
get(Node, Cache, K) -> rpc:call(Node, hypha_cache, get, [Cache, K], 5000).

%% How many of keys 1..N read as Fun(K) from Node.
readable(Node, Cache, N, Fun) ->
    length([K || K <- lists:seq(1, N), get(Node, Cache, K) =:= {ok, Fun(K)}]).

%% ------------------------------------------------------------------------------------------
%% cases

the_cli_puts_gets_deletes_and_counts() ->
    [H1, H2, H3] = [atom_to_list(N) || N <- names()],
    {0, <<"ok\n">>} = cli(["cache", "put", H1, "rep", "{user,42}", "#{name => <<\"ann\">>}"]),
    {0, <<"#{name => <<\"ann\">>}\n">>} = cli(["cache", "get", H2, "rep", "{user,42}"]),
    {1, <<"not_found\n">>} = cli(["cache", "get", H3, "rep", "{user,43}"]),
    {0, <<"ok\n">>} = cli(["cache", "put", H2, "part", "<<\"k\">>", "[1,2,3]"]),
    {0, <<"[1,2,3]\n">>} = cli(["cache", "get", H3, "part", "<<\"k\">>"]),
    {0, <<"1\n">>} = cli(["cache", "size", H1, "part"]),
    {0, <<"1\n">>} = cli(["cache", "size", H3, "rep"]),
    {0, Local} = cli(["cache", "size", H1, "part", "--local"]),
    true = lists:member(Local, [<<"0\n">>, <<"1\n">>]),
    {0, <<"ok\n">>} = cli(["cache", "delete", H3, "rep", "{user,42}"]),
    {1, <<"not_found\n">>} = cli(["cache", "get", H1, "rep", "{user,42}"]),
    %% A TTL: gone by itself, from every node, and counted as an expiration.
    {0, <<"ok\n">>} = cli(["cache", "put", H1, "rep", "short", "lived", "--ttl", "300"]),
    {0, <<"lived\n">>} = cli(["cache", "get", H2, "rep", "short"]),
    ok = wait_until(fun() -> [get(N, rep, short) || N <- names()] =:= [not_found, not_found, not_found] end, 3000),
    ok = wait_until(fun() -> maps:get(expirations, stats(list_to_atom(H2), rep)) =:= 1 end, 1000),  % swept
    {0, Stats} = cli(["cache", "stats", H2, "rep"]),
    {ok, Toks, _} = erl_scan:string(binary_to_list(Stats) ++ "."),
    {ok, #{hits := Hits, misses := _, writes := _, evictions := 0, expirations := 1}} = erl_parse:parse_term(Toks),
    true = Hits >= 1,
    {1, <<"{error,{no_such_cache,<<\"nope\">>}}\n">>} = cli(["cache", "get", H1, "nope", "k"]),
    {1, _} = cli(["cache", "put", H1, "rep", "{unclosed", "v"]),
    {0, <<"ok\n">>} = cli(["cache", "delete", H1, "part", "<<\"k\">>"]),
    {0, <<"0\n">>} = cli(["cache", "size", H2, "part"]),
    ok.

writes_from_erlang_are_readable_from_every_node() ->
    Nodes = names(),
    N = 300,
    [ok = rpc:call(lists:nth(1 + K rem 3, Nodes), hypha_cache, put, [C, K, K * 7]) || C <- [rep, part], K <- lists:seq(1, N)],
    [N = readable(Node, C, N, fun(K) -> K * 7 end) || Node <- Nodes, C <- [rep, part]],
    N = rpc:call(hd(Nodes), hypha_cache, size, [part]),
    %% Each partitioned key is on two nodes.
    ok = wait_until(fun() -> lists:sum([rpc:call(X, hypha_cache, local_size, [part]) || X <- Nodes]) =:= 2 * N end, 3000),
    %% put/4 with options, delete/2, the other operations.
    ok = rpc:call(hd(Nodes), hypha_cache, put, [rep, ttl_key, v, [{ttl, 60000}]]),
    Left = rpc:call(lists:last(Nodes), hypha_cache, ttl, [rep, ttl_key]),
    true = is_integer(Left) andalso Left =< 60000 andalso Left > 50000,
    infinity = rpc:call(hd(Nodes), hypha_cache, ttl, [rep, 1]),
    false = rpc:call(hd(Nodes), hypha_cache, put_new, [part, 1, x]),
    {ok, 8} = rpc:call(hd(Nodes), hypha_cache, incr, [part, 1, 1]),
    {ok, 8} = rpc:call(lists:last(Nodes), hypha_cache, take, [part, 1]),
    not_found = get(hd(Nodes), part, 1),
    ok = rpc:call(hd(Nodes), hypha_cache, put, [part, 1, 7]),
    ok = rpc:call(lists:last(Nodes), hypha_cache, delete, [rep, ttl_key]),
    not_found = get(hd(Nodes), rep, ttl_key),
    {error, {bad_option, colour}} = rpc:call(hd(Nodes), hypha_cache, put, [rep, k, v, colour]),
    ok.

a_stopped_node_converges_on_what_was_written_meanwhile() ->
    [H1, H2, H3] = names(),
    Os = integer_to_list(get({os, H3})),
    os:cmd("kill -STOP " ++ Os),
    %% The others see it go (detect_ms), then write on without it.
    ok = wait_until(fun() -> ready(H1, rep, 2) andalso ready(H2, part, 2) end, 5000),
    [ok = rpc:call(H1, hypha_cache, put, [C, K, -K]) || C <- [rep, part], K <- lists:seq(1, 100)],
    ok = rpc:call(H2, hypha_cache, delete, [rep, 300]),
    os:cmd("kill -CONT " ++ Os),
    ok = wait_until(fun() -> ready(H3, rep, 3) andalso ready(H3, part, 3) end, 10000),
    Want = fun(K) when K =< 100 -> -K; (K) -> K * 7 end,
    ok = wait_until(fun() -> readable(H3, rep, 299, Want) =:= 299 andalso get(H3, rep, 300) =:= not_found end, 5000),
    ok = wait_until(fun() -> readable(H3, part, 300, Want) =:= 300 end, 5000),
    ok.

no_acknowledged_write_is_lost_when_a_node_is_killed() ->
    [H1, H2, H3] = names(),
    %% Writes acknowledged right before the kill, through the node to be killed too.
    [ok = rpc:call(lists:nth(1 + K rem 3, names()), hypha_cache, put, [C, {k, K}, K]) || C <- [rep, part], K <- lists:seq(1, 200)],
    os:cmd("kill -9 " ++ integer_to_list(get({os, H2}))),
    put(dead, [H2]),
    Count = fun(Node, C) -> length([K || K <- lists:seq(1, 200), get(Node, C, {k, K}) =:= {ok, K}]) end,
    [200 = Count(Node, C) || Node <- [H1, H3], C <- [rep, part]],
    %% Two copies of every partitioned key again, on the two survivors.
    ok = wait_until(fun() ->
                            rpc:call(H1, hypha_cache, local_size, [part]) =:= 500 andalso
                                rpc:call(H3, hypha_cache, local_size, [part]) =:= 500
                    end, 10000),
    500 = rpc:call(H3, hypha_cache, size, [part]),
    ok.

a_node_that_gets_sigterm_hands_its_keys_to_the_last_one() ->
    [H1, _, H3] = names(),
    %% One copy of each key (replicas = 1): about half of them on H3 alone.
    [ok = rpc:call(H1, hypha_cache, put, [one, K, K]) || K <- lists:seq(1, 200)],
    OnH3 = rpc:call(H3, hypha_cache, local_size, [one]),
    true = OnH3 > 0 andalso OnH3 < 200,
    Os = get({os, H3}),
    os:cmd("kill -TERM " ++ integer_to_list(Os)),
    0 = exit_status(Os, 15000),
    put(dead, [H3 | get(dead)]),
    200 = rpc:call(H1, hypha_cache, local_size, [one]),
    200 = length([K || K <- lists:seq(1, 200), get(H1, one, K) =:= {ok, K}]),
    500 = rpc:call(H1, hypha_cache, local_size, [part]),
    ok.
