#!/usr/bin/env escript
%% -*- erlang -*-
-mode(compile).
-export([init/1, handle_call/3, handle_cast/2]).
-include("hypha_nodes.hrl").
%%
%% The cluster registry with a real OTP 25 node (this script): two hypha nodes from config files
%% ([registry], each listing the other) replicate names registered through either; Erlang
%% processes registered by rpc, and a gen_server started {via, hypha_registry, Name} with the
%% shipped erlang/hypha_registry.erl (from Erlang here, and from an Elixir node's GenServer
%% start_link, elixir/registry_via.exs), are found through both, leave when they exit, and leave with
%% the hypha node that registered them when it is killed with -9; the CLI finds and lists them. A
%% hypha node stopped with SIGSTOP is declared down by the other within detect_ms (1 s here; the
%% tick time is 60 s) by the heartbeat, and after SIGCONT it comes back with its names.
%% Usage (ERL_EPMD_PORT set to a port of this test's own): escript registry_interop.escript HYPHA DIR

main([Hypha, Dir]) ->
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    os:getenv("ERL_EPMD_PORT") =/= false orelse fail_now("ERL_EPMD_PORT must be set for isolation"),
    Uniq = os:getpid(),
    put(hypha, Hypha),
    put(cookie, "registry_cookie"),
    put(dir, Dir),
    put(os_pids, []),
    H1 = list_to_atom("hypha_reg1_" ++ Uniq ++ "@127.0.0.1"),
    H2 = list_to_atom("hypha_reg2_" ++ Uniq ++ "@127.0.0.1"),
    put(h1, H1),
    put(h2, H2),
    put(h1_os, start_hypha(H1, H2)),
    start_hypha(H2, H1),
    {ok, _} = net_kernel:start([list_to_atom("registry_interop_" ++ Uniq ++ "@127.0.0.1"), longnames]),
    erlang:set_cookie(node(), list_to_atom(get(cookie))),
    pong = net_adm:ping(H1),
    pong = net_adm:ping(H2),
    load_via_module(),
    Cases = [fun registered_through_one_is_found_through_the_other/0,
             fun an_erlang_process_that_exits_loses_its_name/0,
             fun a_gen_server_runs_under_a_via_name/0,
             fun an_elixir_genserver_runs_under_a_via_name/0,
             fun cli_finds_and_lists_names/0,
             fun a_stopped_hypha_node_is_down_within_detect_ms_and_comes_back/0,
             fun a_killed_hypha_node_takes_the_names_it_registered/0],
    Results = [run_case(C) || C <- Cases],
    cleanup(),
    Failed = [R || R <- Results, R =/= ok],
    io:format("registry interop: ~b cases, ~b failed~n", [length(Results), length(Failed)]),
    halt(case Failed of [] -> 0; _ -> 1 end);
main(_) ->
    io:format("usage: registry_interop.escript HYPHA_BINARY WORK_DIR~n"),
    halt(2).

fail_now(Why) ->
    io:format("FAIL ~s~n", [Why]),
    cleanup(),
    halt(1).

%% A `hypha node --config FILE` running the registry, connecting to Other.
start_hypha(Name, Other) ->
    start_node(Name, ["[registry]\nsync_interval_ms = 20\n[cluster]\ndetect_ms = 1000\nstrategies = [\"static\"]\n"
                      "[cluster.static]\nnodes = [\"", atom_to_list(Other), "\"]\n"]).

%% The module shipped for BEAM users, compiled from the source tree.
load_via_module() ->
    Root = filename:dirname(filename:dirname(filename:dirname(filename:absname(escript:script_name())))),
    Src = filename:join([Root, "erlang", "hypha_registry.erl"]),
    {ok, hypha_registry, Bin} = compile:file(Src, [binary, report]),
    {module, hypha_registry} = code:load_binary(hypha_registry, Src, Bin),
    ok = hypha_registry:set_node(get(h1)).

idle() -> spawn(fun() -> receive stop -> ok end end).

whereis_on(Node, Name) -> rpc:call(Node, hypha_registry, whereis_name, [Name]).

%% gen_server callbacks of the via-named server
init([]) -> {ok, []}.
handle_call(ping, _From, S) -> {reply, pong, S}.
handle_cast(_, S) -> {noreply, S}.

%% ------------------------------------------------------------------------------------------
%% cases

registered_through_one_is_found_through_the_other() ->
    H1 = get(h1), H2 = get(h2),
    P = idle(),
    yes = rpc:call(H1, hypha_registry, register_name, [{erl, 1}, P]),
    P = whereis_on(H1, {erl, 1}),  % read your writes
    ok = wait_until(fun() -> whereis_on(H2, {erl, 1}) =:= P end),
    no = rpc:call(H2, hypha_registry, register_name, [{erl, 1}, idle()]),
    yes = rpc:call(H2, hypha_registry, register_name, [{erl, 2}, P, #{role => spare}]),
    ok = wait_until(fun() -> rpc:call(H1, hypha_registry, lookup, [{erl, 2}]) =:= {P, #{role => spare}} end),
    P = rpc:call(H2, hypha_registry, send, [{erl, 1}, hello]),
    {badrpc, {'EXIT', {badarg, {nobody, hello}}}} = rpc:call(H2, hypha_registry, send, [nobody, hello]),
    put(p1, P),
    ok.

an_erlang_process_that_exits_loses_its_name() ->
    H1 = get(h1), H2 = get(h2),
    P = get(p1),
    exit(P, kill),
    ok = wait_until(fun() -> whereis_on(H1, {erl, 1}) =:= undefined andalso whereis_on(H2, {erl, 1}) =:= undefined
                            andalso whereis_on(H1, {erl, 2}) =:= undefined end),
    ok.

a_gen_server_runs_under_a_via_name() ->
    H2 = get(h2),
    Name = {via, hypha_registry, {service, <<"billing">>}},
    {ok, Pid} = gen_server:start(Name, ?MODULE, [], []),
    pong = gen_server:call(Name, ping),
    {error, {already_started, Pid}} = gen_server:start(Name, ?MODULE, [], []),
    ok = wait_until(fun() -> whereis_on(H2, {service, <<"billing">>}) =:= Pid end),
    ok = gen_server:stop(Pid),
    ok = wait_until(fun() -> whereis_on(H2, {service, <<"billing">>}) =:= undefined end),
    undefined = hypha_registry:whereis_name({service, <<"billing">>}),
    ok.

%% Elixir's GenServer.start_link(Echo, 42, name: {:via, :hypha_registry, {:elixir, "echo"}}):
%% the hypha nodes hold it; when the Elixir node goes, so does the name.
an_elixir_genserver_runs_under_a_via_name() ->
    H1 = get(h1), H2 = get(h2),
    E = list_to_atom("elixir_reg_" ++ os:getpid() ++ "@127.0.0.1"),
    Here = filename:dirname(filename:absname(escript:script_name())),
    Src = filename:join([filename:dirname(filename:dirname(Here)), "erlang", "hypha_registry.erl"]),
    Port = open_port({spawn_executable, os:find_executable("elixir")},
                     [{args, ["--name", atom_to_list(E), "--cookie", get(cookie),
                              filename:join(Here, "elixir/registry_via.exs"), atom_to_list(H1), Src]},
                      binary, {line, 65536}, exit_status, stderr_to_stdout]),
    {os_pid, OsPid} = erlang:port_info(Port, os_pid),
    put(os_pids, [OsPid | get(os_pids)]),
    {ok, _} = expect_line(Port, <<"via ok">>, 30000),
    Name = {elixir, <<"echo">>},
    ok = wait_until(fun() -> P = whereis_on(H2, Name), is_pid(P) andalso node(P) =:= E end),
    {pong, 42} = gen_server:call({via, hypha_registry, Name}, ping),
    port_close(Port),  % its stdin closes: the Elixir node ends
    ok = wait_until(fun() -> whereis_on(H1, Name) =:= undefined andalso whereis_on(H2, Name) =:= undefined end),
    ok.

cli_finds_and_lists_names() ->
    H1 = get(h1), H2 = get(h2),
    P = idle(),
    yes = rpc:call(H1, hypha_registry, register_name, [<<"cli-job">>, P]),
    ok = wait_until(fun() -> whereis_on(H2, <<"cli-job">>) =:= P end),
    Text = pid_text(P),
    {0, Where} = cli(["registry", "whereis", atom_to_list(H2), "<<\"cli-job\">>"]),
    Where = <<Text/binary, "\n">>,
    {1, <<"undefined\n">>} = cli(["registry", "whereis", atom_to_list(H2), "nobody"]),
    {0, List} = cli(["registry", "list", atom_to_list(H1)]),
    Line = <<"<<\"cli-job\">> ", Text/binary>>,
    [Line] = [L || L <- binary:split(List, <<"\n">>, [global]), L =/= <<>>],
    exit(P, kill),
    ok.

a_stopped_hypha_node_is_down_within_detect_ms_and_comes_back() ->
    H1 = get(h1), H2 = get(h2),
    P = idle(),
    yes = rpc:call(H1, hypha_registry, register_name, [stopped_with_h1, P]),
    ok = wait_until(fun() -> whereis_on(H2, stopped_with_h1) =:= P end),
    OsPid = integer_to_list(get(h1_os)),
    T0 = erlang:monotonic_time(millisecond),
    os:cmd("kill -STOP " ++ OsPid),
    %% H2 takes H1's names once it has declared H1 down: within the detect time, plus the
    %% registry's removal and this poll.
    Gone = wait_until(fun() -> whereis_on(H2, stopped_with_h1) =:= undefined end),
    Took = erlang:monotonic_time(millisecond) - T0,
    os:cmd("kill -CONT " ++ OsPid),
    ok = Gone,
    io:format("     stopped node declared down after ~b ms (detect_ms = 1000, ticktime 60 s)~n", [Took]),
    true = Took >= 500 andalso Took < 2500,
    %% Back: it learns the connection is gone, reconnects (static formation), and its registry
    %% brings its names back (P lives on here all along).
    ok = wait_until(fun() -> whereis_on(H2, stopped_with_h1) =:= P end),
    exit(P, kill),
    ok.

a_killed_hypha_node_takes_the_names_it_registered() ->
    H1 = get(h1), H2 = get(h2),
    P = idle(), Q = idle(),
    yes = rpc:call(H1, hypha_registry, register_name, [through_h1, P]),
    yes = rpc:call(H2, hypha_registry, register_name, [through_h2, Q]),
    ok = wait_until(fun() -> whereis_on(H2, through_h1) =:= P andalso whereis_on(H1, through_h2) =:= Q end),
    os:cmd("kill -9 " ++ integer_to_list(get(h1_os))),
    ok = wait_until(fun() -> whereis_on(H2, through_h1) =:= undefined end),
    Q = whereis_on(H2, through_h2),
    yes = rpc:call(H2, hypha_registry, register_name, [through_h1, Q]),  % the name is free again
    ok.
