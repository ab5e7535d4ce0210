#!/usr/bin/env escript
%% -*- erlang -*-
-mode(compile).
%% The cluster demo: two C++ nodes (hypha) and this Erlang node, on loopback, with an EPMD of
%% their own (the first hypha node serves it). Every line shown is what the nodes actually did.
%% Usage: ERL_EPMD_PORT=... escript cluster.escript HYPHA_BINARY

main([Hypha]) ->
    io:setopts([{encoding, unicode}]),
    put(hypha, Hypha),
    put(os_pids, []),
    Cookie = "demo_cookie",
    say("Starting two C++ nodes: alpha and beta (each with a registered 'inbox' process)"),
    A = start_node("alpha@127.0.0.1", Cookie),
    B = start_node("beta@127.0.0.1", Cookie),
    {ok, _} = net_kernel:start(['erlang_demo@127.0.0.1', longnames, 1000]),
    erlang:set_cookie(node(), list_to_atom(Cookie)),
    register(sink, self()),
    Alpha = 'alpha@127.0.0.1', Beta = 'beta@127.0.0.1',
    try
        say("hypha names (the port mapper inside alpha answers):"),
        show(cmd(["names"])),

        say("Erlang pings both C++ nodes:"),
        io:format("    net_adm:ping(alpha) -> ~p~n    net_adm:ping(beta)  -> ~p~n",
                  [net_adm:ping(Alpha), net_adm:ping(Beta)]),
        io:format("    nodes() -> ~p~n", [nodes()]),
        say("A C++ client pings the Erlang node and beta:"),
        show(cmd(["ping", "erlang_demo@127.0.0.1", "--cookie", Cookie])),
        show(cmd(["ping", "beta@127.0.0.1", "--cookie", Cookie])),

        say("Erlang sends a term to {inbox, alpha}; alpha prints it:"),
        {inbox, Alpha} ! {hello, from_erlang, self(), [1, 2.5, <<"bin">>]},
        show_line(A, <<"inbox received {hello">>),
        say("hypha send delivers a term to the process registered as sink on the Erlang node:"),
        {0, _} = cmd(["send", "erlang_demo@127.0.0.1", "sink", "{hello, from_cpp, #{answer => 42}}", "--cookie", Cookie]),
        receive M -> io:format("    Erlang received ~p~n", [M]) after 5000 -> io:format("    (nothing)~n") end,

        say("Monitors across nodes: Erlang monitors beta's inbox; alpha's inbox monitors it too"),
        {inbox, Beta} ! {ping, self()},
        BetaInbox = receive {pong, P} -> P after 5000 -> error(no_pong) end,
        Ref = erlang:monitor(process, BetaInbox),
        erlang:monitor_node(Beta, true),
        {inbox, Alpha} ! {monitor, BetaInbox},
        show_line(A, <<"inbox received {monitor">>),

        say("kill -9 of beta's OS process:"),
        os:cmd("kill -9 " ++ integer_to_list(B)),
        T0 = erlang:monotonic_time(millisecond),
        receive {'DOWN', Ref, process, BetaInbox, R1} ->
                io:format("    Erlang: {'DOWN', _, process, ~p, ~p} after ~b ms~n",
                          [BetaInbox, R1, erlang:monotonic_time(millisecond) - T0])
        after 5000 -> io:format("    Erlang: no DOWN~n") end,
        receive {nodedown, Beta} -> io:format("    Erlang: {nodedown, ~p}~n", [Beta]) after 5000 -> ok end,
        show_line(A, <<"inbox received {'DOWN'">>),

        say("SIGTERM to alpha: it leaves the cluster cleanly"),
        erlang:monitor_node(Alpha, true),
        os:cmd("kill -TERM " ++ integer_to_list(A)),
        receive {nodedown, Alpha} -> io:format("    Erlang: {nodedown, ~p}, nodes() -> ~p~n", [Alpha, nodes()])
        after 5000 -> io:format("    Erlang: no nodedown~n") end
    after
        [os:cmd("kill -9 " ++ integer_to_list(P) ++ " 2>/dev/null") || P <- get(os_pids)]
    end,
    halt(0).

say(Text) -> io:format("~n== ~ts~n", [Text]).

start_node(Name, Cookie) ->
    Port = open_port({spawn_executable, get(hypha)},
                     [{args, ["node", "--name", Name, "--cookie", Cookie, "--inbox", "inbox", "--ticktime", "4"]},
                      binary, {line, 65536}, exit_status, stderr_to_stdout]),
    {os_pid, OsPid} = erlang:port_info(Port, os_pid),
    put(os_pids, [OsPid | get(os_pids)]),
    put({port, OsPid}, Port),
    {ok, Line} = line(Port, <<"started">>),
    io:format("    ~ts~n", [Line]),
    OsPid.

line(Port, Text) ->
    receive
        {Port, {data, {eol, L}}} ->
            case binary:match(L, Text) of nomatch -> line(Port, Text); _ -> {ok, L} end
    after 5000 -> timeout
    end.

show_line(OsPid, Text) ->
    case line(get({port, OsPid}), Text) of
        {ok, L} -> io:format("    alpha printed: ~ts~n", [L]);
        timeout -> io:format("    (alpha printed nothing)~n")
    end.

cmd(Args) ->
    Port = open_port({spawn_executable, get(hypha)}, [{args, Args}, binary, exit_status, stderr_to_stdout]),
    collect(Port, []).

collect(Port, Acc) ->
    receive
        {Port, {data, D}} -> collect(Port, [D | Acc]);
        {Port, {exit_status, S}} -> {S, iolist_to_binary(lists:reverse(Acc))}
    after 20000 -> {timeout, iolist_to_binary(lists:reverse(Acc))}
    end.

show({Status, Out}) ->
    [io:format("    ~ts~n", [L]) || L <- string:split(string:trim(Out), "\n", all)],
    io:format("    (exit ~p)~n", [Status]).
