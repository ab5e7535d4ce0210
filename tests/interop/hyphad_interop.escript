#!/usr/bin/env escript
%% -*- erlang -*-
%% hyphad as an OS process against OTP 25: the whole config is checked before anything starts
%% (one line, exit 2), /health and /api/nodes over HTTP (httpc) with this Erlang node listed as a
%% beam peer, SIGHUP keeps it running (a bad file is refused, the node serves on), SIGTERM leaves
%% cleanly with exit 0; two daemons with [tasks] serve /api/tasks for the whole cluster (a task
%% started through one is seen, refused twice and stopped through the other); [log] format json
%% gives JSON lines with node, pid and event, the cookie and token never in them, and SIGHUP
%% applies a new level at once.
%% Usage: escript hyphad_interop.escript HYPHAD_BINARY WORK_DIR   (ERL_EPMD_PORT set)
-mode(compile).
-include("hypha_nodes.hrl").

main([Hyphad, Dir]) ->
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    os:cmd("epmd -daemon"),
    {ok, _} = net_kernel:start(['hyphad_driver@127.0.0.1', longnames]),
    erlang:set_cookie(node(), hyphad_cookie),
    {ok, _} = application:ensure_all_started(inets),
    put(hypha, Hyphad), put(dir, Dir), put(cookie, "hyphad_cookie"), put(os_pids, []),
    Results = [run_case(F) || F <- [fun bad_config_is_one_line_and_exit_2/0,
                                    fun health_nodes_reload_and_sigterm/0,
                                    fun tasks_over_http_from_either_daemon/0,
                                    fun formation_lists_reload_live/0,
                                    fun kv_routing_table_reloads_live/0,
                                    fun json_logs_hold_no_secret_and_the_level_changes_live/0]],
    cleanup(),
    halt(case lists:all(fun(R) -> R =:= ok end, Results) of true -> 0; false -> 1 end).

write(Name, Text) ->
    File = filename:join(get(dir), Name),
    ok = file:write_file(File, Text),
    File.

%% Lines: read with expect_line; raw: with collect (the whole output at the exit).
start_hyphad(File) -> start_hyphad(File, [{line, 65536}]).
start_hyphad(File, Mode) ->
    Port = open_port({spawn_executable, get(hypha)}, [{args, ["--config", File]}, binary, exit_status,
                                                      stderr_to_stdout | Mode]),
    {os_pid, OsPid} = erlang:port_info(Port, os_pid),
    put(os_pids, [OsPid | get(os_pids)]),
    put({port, OsPid}, Port),
    {Port, OsPid}.

bad_config_is_one_line_and_exit_2() ->
    File = write("bad.toml", "[node]\nname = \"hbad@127.0.0.1\"\n[http]\nport = 8080\nbnid = \"0.0.0.0\"\n"),
    {Port, _} = start_hyphad(File, []),
    {2, Out} = collect(Port, <<>>),
    Expected = iolist_to_binary(["hyphad: ", File, ":5: http.bnid: unknown key\n"]),
    Expected = Out,
    Range = write("range.toml", "[node]\nname = \"hbad@127.0.0.1\"\n[http]\nport = 70000\n"),
    {2, <<"hyphad: ", Rest/binary>>} = collect(element(1, start_hyphad(Range, [])), <<>>),
    {match, _} = re:run(Rest, ":4: http.port: expected an integer of 0..65535, got 70000\n$"),
    %% The download manager: a dir is required, and the supervisor it runs its jobs under.
    NoDir = write("dm_nodir.toml", "[node]\nname = \"hbad@127.0.0.1\"\n[download_manager]\nenabled = true\n"),
    {2, NoDirOut} = collect(element(1, start_hyphad(NoDir, [])), <<>>),
    NoDirOut = iolist_to_binary(["hyphad: ", NoDir, ":4: download_manager.dir: a directory, required when enabled (where the files go)\n"]),
    NoSup = write("dm_nosup.toml", "[node]\nname = \"hbad@127.0.0.1\"\n[download_manager]\nenabled = true\ndir = \"/tmp\"\n"),
    {2, NoSupOut} = collect(element(1, start_hyphad(NoSup, [])), <<>>),
    {match, _} = re:run(NoSupOut, ":4: download_manager.enabled: \\[registry\\] and \\[supervisor\\] as well"),
    BadAllow = write("dm_allow.toml", "[node]\nname = \"hbad@127.0.0.1\"\n[download_manager]\nenabled = false\n"
                                      "allow = [\"127.0.0.0/8\", \"10.0.0.1/8\"]\n"),
    {2, BadAllowOut} = collect(element(1, start_hyphad(BadAllow, [])), <<>>),
    {match, _} = re:run(BadAllowOut, ":5: download_manager.allow: expected a network without host bits \\(10.0.0.0/8\\), got \"10.0.0.1/8\"\n$"),
    ok.

get_json(Port, Path) -> http(get, Port, Path, none, []).

%% {Status, Body} of a request with JSON answered; Body none for GET and DELETE.
http(Method, Port, Path, Body, Headers) ->
    Url = "http://127.0.0.1:" ++ integer_to_list(Port) ++ Path,
    Req = case Body of
              none -> {Url, Headers};
              _ -> {Url, Headers, "application/json", Body}
          end,
    {ok, {{_, Status, _}, RespHeaders, RespBody}} = httpc:request(Method, Req, [{timeout, 5000}], []),
    "application/json; charset=utf-8" = proplists:get_value("content-type", RespHeaders),
    {Status, RespBody}.

has(Body, Text) -> string:find(Body, Text) =/= nomatch.

%% The hypha CLI next to hyphad in the build tree: {ExitStatus, Output as a list}.
cli_of(Args) ->
    Cli = filename:join([filename:dirname(filename:dirname(get(hypha))), "hypha", "hypha"]),
    {S, Out} = collect(open_port({spawn_executable, Cli}, [{args, Args ++ ["--cookie", "hyphad_cookie"]}, binary,
                                                         exit_status, stderr_to_stdout]), <<>>),
    {S, binary_to_list(Out)}.

%% A daemon with the registry, the distributed supervisor, tasks, a static list of the other
%% and an API token; returns {OsPid, HttpPort}.
task_daemon(Name, Other) ->
    File = write(Name ++ ".toml",
                 ["[node]\nname = \"", Name, "@127.0.0.1\"\ncookie = \"hyphad_cookie\"\n",
                  "[cluster]\ndetect_ms = 1000\nstrategies = [\"static\"]\n[cluster.static]\nnodes = [\"", Other,
                  "@127.0.0.1\"]\n[registry]\n[supervisor]\n[tasks]\n[http]\nport = 0\ntoken = \"t0k\"\n"]),
    {Port, OsPid} = start_hyphad(File),
    {ok, Line} = expect_line(Port, <<"started">>, 10000),
    {match, [HttpPort]} = re:run(Line, "http 127\\.0\\.0\\.1:([0-9]+)", [{capture, all_but_first, list}]),
    {OsPid, list_to_integer(HttpPort)}.

health_nodes_reload_and_sigterm() ->
    Good = "[node]\nname = \"hd1@127.0.0.1\"\ncookie = \"hyphad_cookie\"\n[registry]\n[http]\nport = 0\n",
    File = write("hd1.toml", Good),
    {Port, OsPid} = start_hyphad(File),
    {ok, Line} = expect_line(Port, <<"started">>, 10000),
    {match, [HttpPort]} = re:run(Line, "http 127\\.0\\.0\\.1:([0-9]+)", [{capture, all_but_first, list}]),
    P = list_to_integer(HttpPort),
    {200, "{\"node\":\"hd1@127.0.0.1\",\"status\":\"ok\"}"} = get_json(P, "/health"),
    pong = net_adm:ping('hd1@127.0.0.1'),
    Me = atom_to_list(node()),
    ok = wait_until(fun() ->
                            {200, B} = get_json(P, "/api/nodes"),
                            string:find(B, "\"kind\":\"beam\"") =/= nomatch andalso
                                string:find(B, "\"name\":\"" ++ Me ++ "\"") =/= nomatch andalso
                                string:find(B, "\"status\":\"up\"") =/= nomatch
                    end),
    %% `hypha top` of the daemon: a frame with its processes and this Erlang node as a beam peer;
    %% of this Erlang node (not a hypha node): refused, exit 1.
    {0, Top} = cli_of(["top", "hd1@127.0.0.1", "--once", "--top", "3"]),
    true = has(Top, "hypha top hd1@127.0.0.1") andalso has(Top, "PID") andalso has(Top, "SEND QUEUE"),
    {match, _} = re:run(Top, "\n" ++ Me ++ " +beam +[0-9]+"),
    {1, NotHypha} = cli_of(["top", Me, "--once"]),
    true = has(NotHypha, "hypha top reads hypha_node:processes/2"),
    %% This Erlang node's processes, through the daemon (processes/0, then process_info/2 of each).
    {200, Procs} = get_json(P, "/api/processes?node=" ++ Me ++ "&top=5&by=memory"),
    true = has(Procs, "\"node\":\"" ++ Me ++ "\"") andalso has(Procs, "\"current\":\""),
    {match, [Total]} = re:run(Procs, "\"total\":([0-9]+)", [{capture, all_but_first, list}]),
    true = list_to_integer(Total) >= length(processes()) - 20,
    {404, NotFound} = get_json(P, "/api/none"),
    true = string:find(NotFound, "\"error\":\"not_found\"") =/= nomatch,
    %% SIGHUP with a valid file: said, still serving; with a broken one: refused, still serving.
    os:cmd("kill -HUP " ++ integer_to_list(OsPid)),
    {ok, _} = expect_line(Port, <<"reload: nothing to apply live">>, 5000),
    ok = file:write_file(File, Good ++ "nonsense = 1\n"),
    os:cmd("kill -HUP " ++ integer_to_list(OsPid)),
    {ok, Refused} = expect_line(Port, <<"reload refused">>, 5000),
    {match, _} = re:run(Refused, "http.nonsense: unknown key"),
    {200, _} = get_json(P, "/health"),
    pong = net_adm:ping('hd1@127.0.0.1'),
    os:cmd("kill -TERM " ++ integer_to_list(OsPid)),
    {ok, _} = expect_line(Port, <<"stopping (SIGTERM)">>, 5000),
    0 = exit_status(OsPid, 10000),
    {error, _} = httpc:request(get, {"http://127.0.0.1:" ++ HttpPort ++ "/health", []}, [{timeout, 2000}], []),
    ok.

tasks_over_http_from_either_daemon() ->
    {Os2, P2} = task_daemon("hd2", "hd3"),
    {Os3, P3} = task_daemon("hd3", "hd2"),
    Auth = [{"authorization", "Bearer t0k"}],
    %% The orchestrator runs (it answers through both) once the two have met.
    ok = wait_until(fun() -> element(1, get_json(P2, "/api/tasks")) =:= 200 andalso
                                 element(1, get_json(P3, "/api/tasks")) =:= 200 end, 10000),
    Sleepy = "{\"name\":\"sleepy\",\"module\":\"timer\",\"function\":\"sleep\",\"args\":\"[600000]\",\"restart\":false}",
    {401, NoToken} = http(post, P2, "/api/tasks", Sleepy, []),
    true = has(NoToken, "\"error\":\"unauthorized\""),
    {201, Made} = http(post, P2, "/api/tasks", Sleepy, Auth),
    {match, [Where]} = re:run(Made, "\"node\":\"(hd[23]@127\\.0\\.0\\.1)\"", [{capture, all_but_first, list}]),
    %% Seen through the other daemon, running where the first said; a second start is refused.
    {200, Seen} = get_json(P3, "/api/tasks/sleepy"),
    true = has(Seen, "\"status\":\"running\"") andalso has(Seen, "\"node\":\"" ++ Where ++ "\""),
    {409, Dup} = http(post, P3, "/api/tasks", Sleepy, Auth),
    true = has(Dup, "\"error\":\"running\""),
    {400, Bad} = http(post, P3, "/api/tasks", "{\"name\":\"x\",\"module\":\"timer\",\"function\":\"sleep\",\"args\":\"[1,\"}", Auth),
    true = has(Bad, "\"field\":\"args\""),
    %% A short one runs to done, its result shown.
    {201, _} = http(post, P3, "/api/tasks", "{\"name\":\"quick\",\"module\":\"timer\",\"function\":\"sleep\",\"args\":\"[10]\"}", Auth),
    ok = wait_until(fun() -> {200, Q} = get_json(P2, "/api/tasks/quick"), has(Q, "\"status\":\"done\"") end),
    {200, All} = get_json(P2, "/api/tasks"),
    true = has(All, "\"name\":\"quick\"") andalso has(All, "\"name\":\"sleepy\""),
    %% A task that reports progress, followed by `hypha task watch` (not a terminal: a line
    %% per change), which ends with its result.
    {201, _} = http(post, P2, "/api/tasks", "{\"name\":\"stepper\",\"module\":\"hypha_tasks\",\"function\":\"steps\",\"args\":\"[5, 60]\"}", Auth),
    {0, Watched} = cli_of(["task", "watch", "hd3@127.0.0.1", "stepper", "--interval", "20"]),
    WLines = [L || L <- string:split(Watched, "\n", all), L =/= ""],
    {match, _} = re:run(lists:last(WLines), "^stepper done in [0-9.]+ s: 5$"),
    true = lists:any(fun(L) -> re:run(L, "^stepper \\[#+-+\\] +[0-9]+%  on hd[23]@127.0.0.1") =/= nomatch end, WLines),
    {200, Stepped} = get_json(P3, "/api/tasks/stepper"),
    true = has(Stepped, "\"progress\":100"),
    %% Stopped through the other daemon: terminated where it ran, failed with reason stopped.
    {200, Stopped} = http(delete, P3, "/api/tasks/sleepy", none, Auth),
    true = has(Stopped, "\"status\":\"stopped\""),
    {200, After} = get_json(P2, "/api/tasks/sleepy"),
    true = has(After, "\"status\":\"failed\"") andalso has(After, "\"reason\":\"stopped\""),
    Task = {hypha_task, <<"sleepy">>},
    ok = wait_until(fun() -> not lists:keymember(Task, 1, rpc:call(list_to_atom(Where), hypha_sup, which_children, [])) end),
    {404, _} = http(delete, P2, "/api/tasks/nothing", none, Auth),
    [os:cmd("kill -TERM " ++ integer_to_list(O)) || O <- [Os2, Os3]],
    0 = exit_status(Os2, 10000),
    0 = exit_status(Os3, 10000),
    ok.

json_logs_hold_no_secret_and_the_level_changes_live() ->
    Cfg = fun(Level) ->
                  ["[node]\nname = \"hd4@127.0.0.1\"\ncookie = \"hyphad_cookie\"\n",
                   "[log]\nformat = \"json\"\nlevel = \"", Level, "\"\n[http]\nport = 0\ntoken = \"tok-very-secret\"\n"]
          end,
    File = write("hd4.toml", Cfg("info")),
    {Port, OsPid} = start_hyphad(File),
    {ok, _} = expect_line(Port, <<"started">>, 10000),
    %% A connection from this node: nodeup logged at info, as JSON, with node and event.
    pong = net_adm:ping('hd4@127.0.0.1'),
    {ok, Up} = expect_line(Port, <<"\"event\":\"nodeup\"">>, 5000),
    <<"{\"time\":\"", _/binary>> = Up,
    true = has(binary_to_list(Up), "\"node\":\"hd4@127.0.0.1\""),
    %% SIGHUP: an unchanged file applies nothing; a new level applies at once.
    os:cmd("kill -HUP " ++ integer_to_list(OsPid)),
    {ok, Same} = expect_line(Port, <<"reload: ">>, 5000),
    {match, _} = re:run(Same, "nothing to apply live"),
    ok = file:write_file(File, Cfg("error")),
    os:cmd("kill -HUP " ++ integer_to_list(OsPid)),
    {ok, Applied} = expect_line(Port, <<"reload: ">>, 5000),
    {match, _} = re:run(Applied, "applied log.level=error"),
    %% At error, a nodedown (warn) is not written any more.
    erlang:disconnect_node('hd4@127.0.0.1'),
    pong = net_adm:ping('hd4@127.0.0.1'),
    os:cmd("kill -TERM " ++ integer_to_list(OsPid)),
    Rest = collect_lines(Port, []),
    false = lists:any(fun(L) -> has(binary_to_list(L), "\"event\":\"nodeup\"") end, Rest),
    All = [Up, Same, Applied | Rest],
    %% The cookie and the token appear nowhere in what it wrote.
    false = lists:any(fun(L) -> has(binary_to_list(L), "hyphad_cookie") orelse has(binary_to_list(L), "tok-very-secret") end, All),
    ok.

%% SIGHUP applies a new formation list at once: the daemon connects to a node added to
%% cluster.static.nodes, and with disconnect_dropped disconnects one dropped from it; a key that
%% cannot change live is named (http.port), its value never.
formation_lists_reload_live() ->
    Me = atom_to_list(node()),
    Cfg = fun(Nodes, Dropped, HttpPort) ->
                  ["[node]\nname = \"hd5@127.0.0.1\"\ncookie = \"hyphad_cookie\"\n[cluster]\nstrategies = [\"static\"]\n",
                   "mesh = false\ndisconnect_dropped = ", Dropped, "\n[cluster.static]\nnodes = [", Nodes, "]\n",
                   "[http]\nport = ", HttpPort, "\n"]
          end,
    File = write("hd5.toml", Cfg("", "false", "0")),
    {Port, OsPid} = start_hyphad(File),
    {ok, _} = expect_line(Port, <<"started">>, 10000),
    false = lists:member('hd5@127.0.0.1', nodes()),
    ok = file:write_file(File, Cfg("\"" ++ Me ++ "\"", "false", "0")),
    os:cmd("kill -HUP " ++ integer_to_list(OsPid)),
    {ok, Added} = expect_line(Port, <<"reload: ">>, 5000),
    {match, _} = re:run(Added, "applied cluster.static.nodes$"),
    ok = wait_until(fun() -> lists:member('hd5@127.0.0.1', nodes()) end),
    %% Dropped, with disconnect_dropped: disconnected; the port change waits for a restart.
    ok = file:write_file(File, Cfg("", "true", "1")),
    os:cmd("kill -HUP " ++ integer_to_list(OsPid)),
    {ok, Dropped} = expect_line(Port, <<"reload: ">>, 5000),
    {match, _} = re:run(Dropped, "applied cluster.disconnect_dropped cluster.static.nodes; at a restart: http.port$"),
    ok = wait_until(fun() -> not lists:member('hd5@127.0.0.1', nodes()) end),
    os:cmd("kill -TERM " ++ integer_to_list(OsPid)),
    {ok, _} = expect_line(Port, <<"stopping (SIGTERM)">>, 5000),
    0 = exit_status(OsPid, 10000),
    ok.

%% [kv] and [routing]: the KV store's text server answers; SIGHUP swaps the routing table live
%% (a bucket routed to a node that does not exist is then an error, one routed here works).
kv_routing_table_reloads_live() ->
    Cfg = fun(Routing) ->
                  ["[node]\nname = \"hd6@127.0.0.1\"\ncookie = \"hyphad_cookie\"\n[kv]\nport = 0\n[routing]\n", Routing]
          end,
    File = write("hd6.toml", Cfg("\"a-z\" = \"hd6@127.0.0.1\"\n")),
    {Port, OsPid} = start_hyphad(File),
    {ok, _} = expect_line(Port, <<"started">>, 10000),
    {ok, KvLine} = expect_line(Port, <<"kv port">>, 5000),
    {match, [KvPort]} = re:run(KvLine, "kv port ([0-9]+)", [{capture, all_but_first, list}]),
    {ok, S} = gen_tcp:connect({127, 0, 0, 1}, list_to_integer(KvPort), [binary, {packet, line}, {active, false}]),
    Ask = fun(Line) -> ok = gen_tcp:send(S, [Line, "\r\n"]), {ok, A} = gen_tcp:recv(S, 0, 10000), A end,
    <<"OK\r\n">> = Ask("CREATE shopping"),
    <<"OK\r\n">> = Ask("CREATE apples"),
    ok = file:write_file(File, Cfg("\"a-m\" = \"hd6@127.0.0.1\"\n\"n-z\" = \"ghost@127.0.0.1\"\n")),
    os:cmd("kill -HUP " ++ integer_to_list(OsPid)),
    {ok, <<"hyphad: reload: applied routing">>} = expect_line(Port, <<"reload: ">>, 5000),
    <<"ERROR ", _/binary>> = Ask("CREATE shopping"),  % s: routed to ghost now
    <<"OK\r\n">> = Ask("CREATE bananas"),
    gen_tcp:close(S),
    os:cmd("kill -TERM " ++ integer_to_list(OsPid)),
    {ok, _} = expect_line(Port, <<"stopping (SIGTERM)">>, 5000),
    0 = exit_status(OsPid, 10000),
    ok.

%% Every line until the port exits (exit status 0 required).
collect_lines(Port, Acc) ->
    receive
        {Port, {data, {_, Line}}} -> collect_lines(Port, [Line | Acc]);
        {Port, {exit_status, 0}} -> lists:reverse(Acc)
    after 10000 -> error(no_exit)
    end.
