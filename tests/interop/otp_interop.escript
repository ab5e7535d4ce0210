#!/usr/bin/env escript
%% -*- erlang -*-
-mode(compile).
%%
%% Interop test of hypha's otp layer against real Erlang and Elixir nodes on loopback.
%% Usage (ERL_EPMD_PORT set to a port of this test's own):
%%   escript otp_interop.escript HYPHA DIR        (HYPHA_STACK_SERVER: the stack_server example)
%%
%% Cases: rpc:call / erpc:call / rpc:multicall / rpc:cast from Erlang into a C++ node (built-ins,
%% C++ exports, undef, badarg, a C++ exception: the node keeps serving), `hypha rpc` into Erlang
%% (values, badrpc shapes and exit codes, io output printed locally, nodedown), Elixir's
%% GenServer.call/cast/stop against the C++ stack server (deferred reply, noproc, timeout), Erlang's
%% gen_server:multi_call and abcast against it,
%% `hypha call` against an Elixir GenServer (reply, noproc, timeout), Elixir's Task.Supervisor.async
%% and async_nolink against the C++ task supervisor (value, failure, noproc), and its children,
%% count_children and terminate_child as a DynamicSupervisor, the C++ task client
%% against Elixir's Task.Supervisor (value, failure, unknown supervisor, the node killed mid-task),
%% and a call pending when the
%% C++ node is killed with -9 ending in {nodedown, Node}, never a hang.
%% Every OS process it starts is killed at the end, pass or fail. Exit 0 when all cases pass.

main([Hypha, Dir]) ->
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    os:getenv("ERL_EPMD_PORT") =/= false orelse fail_now("ERL_EPMD_PORT must be set for isolation"),
    Stack = os:getenv("HYPHA_STACK_SERVER"),
    Stack =/= false orelse fail_now("HYPHA_STACK_SERVER must name the stack_server example"),
    Cookie = "otp_cookie",
    Uniq = os:getpid(),
    put(hypha, Hypha),
    put(cookie, Cookie),
    put(os_pids, []),
    %% A plain hypha node first: it serves EPMD for everyone.
    H = list_to_atom("hypha_otp_" ++ Uniq ++ "@127.0.0.1"),
    put(h, H),
    _ = start_port(Hypha, ["node", "--name", atom_to_list(H), "--cookie", Cookie], <<"started">>),
    S = list_to_atom("stack_" ++ Uniq ++ "@127.0.0.1"),
    put(s, S),
    put(s_port, start_port(Stack, ["--name", atom_to_list(S), "--cookie", Cookie], <<"ready">>)),
    {ok, _} = net_kernel:start([list_to_atom("otp_interop_" ++ Uniq ++ "@127.0.0.1"), longnames]),
    erlang:set_cookie(node(), list_to_atom(Cookie)),
    Cases = [fun erlang_rpc_calls_builtins/0, fun erlang_rpc_calls_cpp_exports/0,
             fun failures_have_otp_shapes_and_node_serves_on/0, fun erpc_and_multicall_and_cast/0,
             fun hypha_rpc_into_erlang/0, fun hypha_rpc_prints_remote_io/0,
             fun elixir_genserver_calls_cpp_server/0, fun erlang_multi_call_and_abcast_on_cpp/0,
             fun hypha_call_into_elixir_genserver/0,
             fun elixir_task_supervisor_async_on_cpp/0, fun elixir_task_supervisor_children_on_cpp/0,
             fun cpp_task_client_on_elixir_supervisor/0,
             fun pending_call_ends_with_nodedown_on_kill_9/0],
    Results = [run_case(C) || C <- Cases],
    cleanup(),
    Failed = [R || R <- Results, R =/= ok],
    io:format("otp interop: ~b cases, ~b failed~n", [length(Results), length(Failed)]),
    halt(case Failed of [] -> 0; _ -> 1 end);
main(_) ->
    io:format("usage: otp_interop.escript HYPHA_BINARY WORK_DIR~n"),
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

start_port(Exe, Args, Ready) ->
    Port = open_port({spawn_executable, Exe}, [{args, Args}, binary, {line, 65536}, exit_status, stderr_to_stdout]),
    {os_pid, OsPid} = erlang:port_info(Port, os_pid),
    put(os_pids, [OsPid | get(os_pids)]),
    {ok, _} = expect_line(Port, Ready, 15000),
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

%% Runs `hypha Args --cookie C`: {ExitStatus, Output}.
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

cleanup() ->
    [os:cmd("kill -9 " ++ integer_to_list(P) ++ " 2>/dev/null") || P <- get(os_pids)],
    ok.

elixir(Name, Script) ->
    Cmd = "elixir --name " ++ Name ++ "_" ++ os:getpid() ++ "@127.0.0.1 --cookie " ++ get(cookie) ++
          " -e '" ++ Script ++ "' 2>&1",
    string:split(string:trim(os:cmd(Cmd)), "\n", all).

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

erlang_rpc_calls_builtins() ->
    H = get(h),
    all_ok([expect(H, rpc:call(H, erlang, node, [])),
            expect(true, rpc:call(H, erlang, is_alive, [])),
            expect(true, lists:member(node(), rpc:call(H, erlang, nodes, []))),
            expect(true, is_pid(rpc:call(H, erlang, whereis, [rex]))),
            expect(undefined, rpc:call(H, erlang, whereis, [no_such_name])),
            expect(H, rpc:call(H, erlang, apply, [erlang, node, []])),
            builtin_process_calls(H)]).

%% The process built-ins (processes, process_info, is_process_alive, exit, send) through rpc.
builtin_process_calls(H) ->
    Rex = rpc:call(H, erlang, whereis, [rex]),
    Gone = rpc:call(H, erlang, self, []),  % the rpc's process, ended by now
    register(builtin_probe, self()),
    Victim = spawn(fun() -> receive never -> ok end end),
    Mon = monitor(process, Victim),
    Sent = rpc:call(H, erlang, send, [{builtin_probe, node()}, hello]),
    Got = receive hello -> hello after 5000 -> nothing end,
    Killed = rpc:call(H, erlang, exit, [Victim, kill]),
    Down = receive {'DOWN', Mon, process, Victim, R} -> R after 5000 -> no_down end,
    unregister(builtin_probe),
    all_ok([expect(true, lists:member(Rex, rpc:call(H, erlang, processes, []))),
            expect(true, rpc:call(H, erlang, is_process_alive, [Rex])),
            expect(false, rpc:call(H, erlang, is_process_alive, [Gone])),
            expect({registered_name, rex}, rpc:call(H, erlang, process_info, [Rex, registered_name])),
            expect([{status, waiting}, {message_queue_len, 0}, {trap_exit, false}],
                   rpc:call(H, erlang, process_info, [Rex, [status, message_queue_len, trap_exit]])),
            expect(undefined, rpc:call(H, erlang, process_info, [Gone])),
            expect({badrpc, {'EXIT', boom}}, rpc:call(H, erlang, exit, [boom])),
            case rpc:call(H, erlang, process_info, [self(), status]) of  % not a process of H
                {badrpc, {'EXIT', {badarg, _}}} -> ok;
                Other -> {expected_badarg, Other}
            end,
            expect({hello, hello, true, killed}, {Sent, Got, Killed, Down})]).

erlang_rpc_calls_cpp_exports() ->
    S = get(s),
    ok = rpc:call(S, stack, push, [one]),
    all_ok([expect(5, rpc:call(S, stack, add, [2, 3])),
            expect(1, rpc:call(S, stack, size, [])),
            expect(one, gen_server:call({stack, S}, pop))]).

failures_have_otp_shapes_and_node_serves_on() ->
    S = get(s),
    all_ok([expect({badrpc, {'EXIT', {undef, [{nomod, nofun, [1], []}]}}}, rpc:call(S, nomod, nofun, [1])),
            expect({badrpc, {'EXIT', {undef, [{stack, add, [1], []}]}}}, rpc:call(S, stack, add, [1])),
            case rpc:call(S, stack, add, [1, two]) of
                {badrpc, {'EXIT', {badarg, [{stack, add, [1, two], [{error_info, #{cause := Cause}}]}]}}} ->
                    expect(true, string:find(Cause, <<"argument 2">>) =/= nomatch);
                Other -> {badarg_shape, Other}
            end,
            expect({badrpc, {'EXIT', {{exception, <<"failed on purpose">>}, [{stack, fail, [], []}]}}},
                   rpc:call(S, stack, fail, [])),
            expect(7, rpc:call(S, stack, add, [3, 4]))]).  % still serving

erpc_and_multicall_and_cast() ->
    H = get(h), S = get(s),
    Undef = try erpc:call(S, nomod, nofun, []) catch error:E -> E end,
    Nowhere = list_to_atom("nowhere_" ++ os:getpid() ++ "@127.0.0.1"),
    {Res, Bad} = rpc:multicall([H, S, Nowhere], erlang, node, []),
    true = rpc:cast(S, stack, push, [cast_item]),
    all_ok([expect(9, erpc:call(S, stack, add, [4, 5], 5000)),
            expect({exception, undef, [{nomod, nofun, [], []}]}, Undef),
            expect({[H, S], [Nowhere]}, {Res, Bad}),
            expect(cast_item, gen_server:call({stack, S}, pop))]).

hypha_rpc_into_erlang() ->
    Me = atom_to_list(node()),
    Nowhere = "nowhere_" ++ os:getpid() ++ "@127.0.0.1",
    all_ok([expect({0, "[3,2,1]"}, hypha([ "rpc", Me, "lists", "reverse", "[[1,2,3]]"])),
            expect({0, "'" ++ Me ++ "'"}, hypha(["rpc", Me, "erlang", "node"])),
            expect({1, "{badrpc,{'EXIT',{undef,[{nomod,nofun,[],[]}]}}}"}, hypha(["rpc", Me, "nomod", "nofun", "[]"])),
            expect({1, "{badrpc,{'EXIT',boom}}"}, hypha(["rpc", Me, "erlang", "exit", "[boom]"])),
            expect({1, "{badrpc,timeout}"}, hypha(["rpc", Me, "timer", "sleep", "[3000]", "--timeout", "300"])),
            expect({1, "{badrpc,nodedown}"}, hypha(["rpc", Nowhere, "erlang", "node"])),
            %% and into a C++ node through the router-less path: exports of the stack server
            expect({0, "12"}, hypha(["rpc", atom_to_list(get(s)), "stack", "add", "[5, 7]"]))]).

hypha_rpc_prints_remote_io() ->
    Me = atom_to_list(node()),
    %% io:format on this node formats through the C++ caller's group leader (io_lib:format in C++)
    Bad = hypha(["rpc", Me, "io", "format", "[\"~.0f\", [1.0]]"]),
    all_ok([expect({0, "hello world\nok"}, hypha(["rpc", Me, "io", "format", "[\"hello ~p~n\", [world]]"])),
            expect({0, "|  3.1|ab  |FF|0x1f|[1,2|...]|1.00000e-5|0.13\nok"},
                   hypha(["rpc", Me, "io", "format",
                          "[\"|~5.1f|~-4s|~.16B|~.16x|~W|~e|~.2f~n\", [3.14159, \"ab\", 255, 31, \"0x\", [1,2,3,4], 3, 1.0e-5, 0.125]]"])),
            case Bad of  % a format io_lib rejects: badarg for the caller, as from BEAM's io servers
                {1, Out} -> expect(true, string:find(Out, "badarg") =/= nomatch);
                _ -> {expected_badarg, Bad}
            end]).

elixir_genserver_calls_cpp_server() ->
    S = atom_to_list(get(s)),
    Script = "s = {:stack, :\"" ++ S ++ "\"}; "
             "GenServer.cast(s, {:push, :hello}); "
             "IO.inspect GenServer.call(s, :pop); "
             "t = Task.async(fn -> GenServer.call(s, :pop) end); "
             "Stream.repeatedly(fn -> GenServer.call(s, :waiting) end) |> Enum.find(&(&1 == 1)); "
             "GenServer.cast(s, {:push, :deferred}); "
             "IO.inspect Task.await(t); "
             "IO.inspect(try do GenServer.call({:nothere, :\"" ++ S ++ "\"}, :pop) catch :exit, r -> r end, width: :infinity); "
             "IO.inspect(try do GenServer.call(s, :never, 200) catch :exit, r -> elem(r, 0) end); "
             "IO.inspect :rpc.call(:\"" ++ S ++ "\", :stack, :add, [20, 22])",
    expect([":hello", ":deferred",
            "{:noproc, {GenServer, :call, [{:nothere, :\"" ++ S ++ "\"}, :pop, 5000]}}",
            ":timeout", "42"], elixir("ex_calls", Script)).

hypha_call_into_elixir_genserver() ->
    Ex = "ex_server_" ++ os:getpid() ++ "@127.0.0.1",
    Script = "defmodule ExStack do use GenServer; "
             "def init(x), do: {:ok, x}; "
             "def handle_call(:pop, _from, [h | t]), do: {:reply, h, t}; "
             "def handle_call(:slow, _from, s), do: {:noreply, s}; "
             "def handle_cast({:push, x}, s), do: {:noreply, [x | s]} end; "
             "{:ok, _} = GenServer.start(ExStack, [:a, :b], name: :ex_stack); "
             "IO.puts(\"ready\"); receive do :stop -> :ok end",
    Elixir = os:find_executable("elixir"),
    _ = start_port(Elixir, ["--name", Ex, "--cookie", get(cookie), "-e", Script], <<"ready">>),
    all_ok([expect({0, "a"}, hypha(["call", Ex, "ex_stack", "pop"])),
            expect({0, "b"}, hypha(["call", Ex, "ex_stack", "pop"])),
            expect({1, "{noproc,{gen_server,call,[{nothere,'" ++ Ex ++ "'},pop,5000]}}"},
                   hypha(["call", Ex, "nothere", "pop"])),
            expect({1, "{timeout,{gen_server,call,[{ex_stack,'" ++ Ex ++ "'},slow,300]}}"},
                   hypha(["call", Ex, "ex_stack", "slow", "--timeout", "300"]))]).

%% gen_server:multi_call (its {Tag, Node} reply tags; with a timeout through OTP's middleman
%% process, and without) and abcast against the C++ stack server, with a node that does not exist.
erlang_multi_call_and_abcast_on_cpp() ->
    S = get(s),
    Ghost = list_to_atom("ghost_" ++ os:getpid() ++ "@127.0.0.1"),
    {[{S, N0}], [Ghost]} = gen_server:multi_call([S, Ghost], stack, size, 5000),
    abcast = gen_server:abcast([S], stack, {push, x}),
    {[{S, N1}], []} = gen_server:multi_call([S], stack, size),
    expect(N0 + 1, N1).

%% Elixir's own Task.Supervisor API, unmodified, against the C++ task supervisor (async, async_stream,
%% async_nolink, an unknown supervisor).
elixir_task_supervisor_async_on_cpp() ->
    S = atom_to_list(get(s)),
    Script = "n = :\"" ++ S ++ "\"; "
             "IO.inspect(Task.Supervisor.async({:tasks, n}, :erlang, :node, []) |> Task.await()); "
             "IO.inspect(Task.Supervisor.async({:tasks, n}, :stack, :add, [40, 2]) |> Task.await()); "
             "IO.inspect(Task.Supervisor.async_stream({:tasks, n}, [1, 2, 3], :stack, :add, [10]) |> Enum.to_list()); "
             "t = Task.Supervisor.async_nolink({:tasks, n}, :stack, :fail, []); "
             "IO.inspect(Task.yield(t, 5000), width: :infinity); "
             "IO.inspect(try do Task.Supervisor.async({:nosup, n}, :erlang, :node, []) catch :exit, r -> elem(r, 0) end)",
    expect([":\"" ++ S ++ "\"", "42", "[ok: 11, ok: 12, ok: 13]",
            "{:exit, {{:exception, \"failed on purpose\"}, [{:stack, :fail, [], []}]}}",
            ":noproc"], elixir("ex_tasks", Script)).

%% The C++ task supervisor is a DynamicSupervisor to Elixir: start_child, children, count_children,
%% terminate_child (the task is shut down; a second time it is not found).
elixir_task_supervisor_children_on_cpp() ->
    S = atom_to_list(get(s)),
    Script = "n = :\"" ++ S ++ "\"; "
             "{:ok, pid} = Task.Supervisor.start_child({:tasks, n}, :stack, :wait, []); "
             "IO.inspect(node(pid)); "
             "IO.inspect(Task.Supervisor.children({:tasks, n}) == [pid]); "
             "IO.inspect(DynamicSupervisor.count_children({:tasks, n})); "
             "ref = Process.monitor(pid); "
             "IO.inspect(Task.Supervisor.terminate_child({:tasks, n}, pid)); "
             "receive do {:DOWN, ^ref, _, _, r} -> IO.inspect(r) end; "
             "IO.inspect(Task.Supervisor.children({:tasks, n})); "
             "IO.inspect(Task.Supervisor.terminate_child({:tasks, n}, pid))",
    expect([":\"" ++ S ++ "\"", "true", "%{active: 1, specs: 1, supervisors: 0, workers: 1}",
            ":ok", ":shutdown", "[]", "{:error, :not_found}"], elixir("ex_taskkids", Script)).

%% The C++ side of Task.Supervisor.async against Elixir's own Task.Supervisor.
cpp_task_client_on_elixir_supervisor() ->
    Ex = "ex_tasksup_" ++ os:getpid() ++ "@127.0.0.1",
    %% Hold.run tells this node it runs, then never returns: the task is surely running when the
    %% node is killed.
    Script = "defmodule Hold do def run(n), do: (send({:task_sink, String.to_atom(n)}, :held); receive do :stop -> :ok end) end; "
             "{:ok, _} = Task.Supervisor.start_link(name: :ex_tasks); IO.puts(\"ready\"); receive do :stop -> :ok end",
    Port = start_port(os:find_executable("elixir"), ["--name", Ex, "--cookie", get(cookie), "-e", Script], <<"ready">>),
    Client = os:getenv("HYPHA_TASK_CLIENT"),
    Cookie = get(cookie),  % the closure also runs in another process
    Run = fun(Sup, M, F, A) ->
              string:trim(os:cmd(Client ++ " " ++ Cookie ++ " " ++ Sup ++ " " ++ Ex ++ " " ++ M ++ " " ++ F ++
                                 " '" ++ A ++ "'"))
          end,
    Node = Run("ex_tasks", "erlang", "node", "[]"),
    Sum = Run("ex_tasks", "erlang", "+", "[40, 2]"),
    Bad = Run("ex_tasks", "erlang", "error", "[boom]"),
    NoSup = Run("nosup", "erlang", "node", "[]"),
    %% The Elixir node dies while the task runs: an error, not a hang.
    {os_pid, OsPid} = erlang:port_info(Port, os_pid),
    Self = self(),
    register(task_sink, Self),
    spawn(fun() -> Self ! {slow, Run("ex_tasks", "Elixir.Hold", "run", "[<<\"" ++ atom_to_list(node()) ++ "\">>]")} end),
    receive held -> ok after 10000 -> error(task_not_started) end,
    os:cmd("kill -9 " ++ integer_to_list(OsPid)),
    Slow = receive {slow, S} -> S after 15000 -> hang end,
    all_ok([expect("ok '" ++ Ex ++ "'", Node),
            expect("ok 42", Sum),
            expect(true, lists:prefix("error {boom,", Bad)),
            expect(true, lists:prefix("error {noproc,", NoSup)),
            expect("error {nodedown,'" ++ Ex ++ "'}", Slow)]).

pending_call_ends_with_nodedown_on_kill_9() ->
    S = get(s),
    Self = self(),
    spawn(fun() -> Self ! {call_ended, catch gen_server:call({stack, S}, never, infinity)} end),
    {ok, _} = wait_for_call(S),
    {os_pid, OsPid} = erlang:port_info(get(s_port), os_pid),
    os:cmd("kill -9 " ++ integer_to_list(OsPid)),
    receive
        {call_ended, {'EXIT', {{nodedown, S}, {gen_server, call, [{stack, S}, never, infinity]}}}} -> ok;
        {call_ended, Other} -> {unexpected, Other}
    after 10000 -> hang
    end.

%% The call is pending once the server holds it (its size call answers after it).
wait_for_call(S) ->
    case gen_server:call({stack, S}, size, 5000) of
        N when is_integer(N) -> {ok, N}
    end.
