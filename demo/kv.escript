#!/usr/bin/env escript
%% -*- erlang -*-
-mode(compile).
%% The KV demo (Elixir's KV guide on hypha): two C++ nodes running `hypha kv` with the guide's
%% routing table (a-m on foo, n-z on bar), a client session through each node's text server, where
%% each bucket lives, and an Elixir node calling into the C++ nodes with :rpc.call. Every line
%% shown is what the nodes answered.
%% Usage: ERL_EPMD_PORT=... escript kv.escript HYPHA_BINARY WORK_DIR

main([Hypha, Dir]) ->
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    put(hypha, Hypha), put(os_pids, []),
    Cookie = "kv_demo",
    Foo = "foo@127.0.0.1", Bar = "bar@127.0.0.1",
    Table = "\"a-m\" = \"" ++ Foo ++ "\"\n\"n-z\" = \"" ++ Bar ++ "\"\n",
    try
        say("Two C++ nodes run `hypha kv --config FILE`; the routing table of both:"),
        io:format("    [routing]~n    \"a-m\" = \"~s\"~n    \"n-z\" = \"~s\"~n", [Foo, Bar]),
        FooKv = start_kv(Dir, "foo", Foo, 0, Cookie, Table),
        BarKv = start_kv(Dir, "bar", Bar, 0, Cookie, Table),
        say("A client talks to foo's text server (the router sends each bucket to its owner):"),
        session("foo", FooKv, ["CREATE shopping", "PUT shopping milk 1", "PUT shopping eggs 3",
                               "CREATE apples", "PUT apples gala 12", "GET shopping milk", "HELLO"]),
        say("Another client talks to bar's server and sees the same data:"),
        session("bar", BarKv, ["GET shopping eggs", "DELETE shopping eggs", "GET shopping eggs",
                               "GET apples gala", "GET unknown key", "CREATE 42"]),
        say("Where each bucket lives (hypha rpc NODE kv buckets):"),
        show_cmd(["rpc", Foo, "kv", "buckets", "--cookie", Cookie]),
        show_cmd(["rpc", Bar, "kv", "buckets", "--cookie", Cookie]),
        say("The router is an export too: hypha rpc foo kv_router route '[<<\"world\">>, erlang, node, []]'"),
        show_cmd(["rpc", Foo, "kv_router", "route", "[<<\"world\">>, erlang, node, []]", "--cookie", Cookie]),
        say("An Elixir node calls into the C++ nodes with :rpc.call:"),
        Script = "IO.inspect(:rpc.call(:\"" ++ Foo ++ "\", :kv_router, :route, [\"apples\", :kv, :get, [\"apples\", \"gala\"]])); "
                 "IO.inspect(:rpc.call(:\"" ++ Bar ++ "\", :kv_router, :route, [\"zebra\", :erlang, :node, []])); "
                 "IO.inspect(:rpc.call(:\"" ++ Foo ++ "\", :kv, :nope, []))",
        Out = os:cmd("elixir --name kv_demo_elixir@127.0.0.1 --cookie " ++ Cookie ++ " -e '" ++ Script ++ "' 2>&1"),
        [io:format("    ~s~n", [L]) || L <- string:split(string:trim(Out), "\n", all)],
        say("Done.")
    after
        [os:cmd("kill -9 " ++ integer_to_list(P) ++ " 2>/dev/null") || P <- get(os_pids)]
    end.

say(Text) -> io:format("~n== ~s~n", [Text]).

start_kv(Dir, Short, Name, Port, Cookie, Table) ->
    File = filename:join(Dir, Short ++ ".toml"),
    ok = file:write_file(File, ["[node]\nname = \"", Name, "\"\ncookie = \"", Cookie, "\"\n[kv]\nport = ",
                                integer_to_list(Port), "\n[routing]\n", Table]),
    P = open_port({spawn_executable, get(hypha)}, [{args, ["kv", "--config", File]}, binary, {line, 4096},
                                                    exit_status, stderr_to_stdout]),
    {os_pid, OsPid} = erlang:port_info(P, os_pid),
    put(os_pids, [OsPid | get(os_pids)]),
    receive
        {P, {data, {eol, Line}}} ->
            io:format("    ~s~n", [Line]),
            {match, [Kv]} = re:run(Line, "kv port ([0-9]+)", [{capture, all_but_first, list}]),
            list_to_integer(Kv)
    after 10000 -> error(no_start)
    end.

session(Who, KvPort, Commands) ->
    {ok, S} = gen_tcp:connect({127, 0, 0, 1}, KvPort, [binary, {packet, line}, {active, false}]),
    [begin
         ok = gen_tcp:send(S, [C, "\r\n"]),
         io:format("    ~s> ~s~n", [Who, C]),
         print_reply(S, C)
     end || C <- Commands],
    gen_tcp:close(S).

print_reply(S, C) ->
    {ok, L} = gen_tcp:recv(S, 0, 10000),
    io:format("      ~s~n", [string:trim(L)]),
    case {C, L} of
        {"GET" ++ _, <<"NOT FOUND", _/binary>>} -> ok;
        {"GET" ++ _, <<"ERROR", _/binary>>} -> ok;
        {"GET" ++ _, <<"OK", _/binary>>} -> ok;
        {"GET" ++ _, _} -> print_reply(S, "");
        _ -> ok
    end.

show_cmd(Args) ->
    P = open_port({spawn_executable, get(hypha)}, [{args, Args}, binary, exit_status, stderr_to_stdout]),
    Out = collect(P, []),
    io:format("    $ hypha ~s~n    ~s~n", [lists:join(" ", [A || A <- Args, A =/= "--cookie", A =/= "kv_demo"]), Out]).

collect(P, Acc) ->
    receive
        {P, {data, D}} -> collect(P, [D | Acc]);
        {P, {exit_status, _}} -> string:trim(iolist_to_binary(lists:reverse(Acc)))
    after 20000 -> <<"(timeout)">>
    end.
