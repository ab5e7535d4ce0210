#!/usr/bin/env escript
%% -*- erlang -*-
%% hyphad as an OS process against OTP 25: the whole config is checked before anything starts
%% (one line, exit 2), /health and /api/nodes over HTTP (httpc) with this Erlang node listed as a
%% beam peer, SIGHUP keeps it running (a bad file is refused, the node serves on), SIGTERM leaves
%% cleanly with exit 0.
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
                                    fun health_nodes_reload_and_sigterm/0]],
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
    ok.

get_json(Port, Path) ->
    {ok, {{_, Status, _}, Headers, Body}} =
        httpc:request(get, {"http://127.0.0.1:" ++ integer_to_list(Port) ++ Path, []}, [{timeout, 5000}], []),
    "application/json; charset=utf-8" = proplists:get_value("content-type", Headers),
    {Status, Body}.

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
    {404, NotFound} = get_json(P, "/api/none"),
    true = string:find(NotFound, "\"error\":\"not_found\"") =/= nomatch,
    %% SIGHUP with a valid file: said, still serving; with a broken one: refused, still serving.
    os:cmd("kill -HUP " ++ integer_to_list(OsPid)),
    {ok, _} = expect_line(Port, <<"reload: the file is valid">>, 5000),
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
