#!/usr/bin/env escript
%% -*- erlang -*-
%%! -kernel inet_default_listen_options [{nodelay,true}]
-mode(compile).
%% The BEAM side of the HTTP benchmark: OTP's own HTTP server (inets httpd) answering
%% GET /api/nodes with the same JSON shape hyphad's does, built from nodes() and the node's
%% figures, so that the client measures both servers the same way. No Nagle, as hyphad (the
%% emulator flag above: accepted sockets inherit the listen socket's options).
%% Usage: escript http_beam.escript PORT PORTFILE NAME COOKIE NODE...   (PORTFILE is written once
%% it listens; it is connected to the NODEs first, so that nodes() lists as many as hyphad's answer)
-export([do/1]).

main([PortText, PortFile, Name, Cookie | Peers]) ->
    {ok, _} = net_kernel:start([list_to_atom(Name), longnames]),
    erlang:set_cookie(node(), list_to_atom(Cookie)),
    [true = net_kernel:connect_node(list_to_atom(P)) || P <- Peers],
    ok = inets:start(),
    {ok, _} = inets:start(httpd, [{port, list_to_integer(PortText)}, {server_name, "beam"}, {server_root, "/tmp"},
                                   {document_root, "/tmp"}, {bind_address, {127, 0, 0, 1}},
                                   {modules, [?MODULE]}, {max_clients, 256}, {keep_alive, true},
                                   {max_keep_alive_request, 1000000}]),
    ok = file:write_file(PortFile, PortText),
    io:format("ready~n"),
    receive stop -> ok end.

%% mod callback: every request gets the nodes JSON (the client only asks /api/nodes).
do(_Mod) ->
    Self = atom_to_list(node()),
    Nodes = [io_lib:format("{\"name\":\"~s\",\"status\":\"up\",\"kind\":\"beam\",\"since\":\"~s\","
                           "\"messages_in\":~b,\"messages_out\":~b,\"bytes_in\":~b,\"bytes_out\":~b}",
                           [N, calendar:system_time_to_rfc3339(erlang:system_time(second)), 0, 0, 0, 0])
             || N <- nodes()],
    Body = iolist_to_binary(["{\"self\":\"", Self, "\",\"nodes\":[", lists:join(",", Nodes), "]}"]),
    {proceed, [{response, {response, [{code, 200}, {content_type, "application/json; charset=utf-8"},
                                      {content_length, integer_to_list(byte_size(Body))}], [Body]}}]}.
