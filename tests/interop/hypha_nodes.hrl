%% What the interop escripts share: `hypha node --config` nodes as OS processes, the CLI, polling.
-compile(nowarn_unused_function).  % each script uses some of these
%% The script puts hypha (the binary), dir, cookie and os_pids ([]) in its process dictionary.

%% A `hypha node --config FILE` whose file is its [node] section and then Rest; returns its OS pid.
start_node(Name, Rest) ->
    File = filename:join(get(dir), atom_to_list(Name) ++ ".toml"),
    ok = file:write_file(File, ["[node]\nname = \"", atom_to_list(Name), "\"\ncookie = \"", get(cookie), "\"\n", Rest]),
    %% HYPHA_NODE_LOG=info (say) makes the nodes, and not the CLI runs, log at that level.
    Env = case os:getenv("HYPHA_NODE_LOG") of
              false -> [];
              Level -> [{env, [{"HYPHA_LOG", Level}]}]
          end,
    Port = open_port({spawn_executable, get(hypha)}, [{args, ["node", "--config", File]}, binary, {line, 65536},
                                                      exit_status, stderr_to_stdout | Env]),
    {os_pid, OsPid} = erlang:port_info(Port, os_pid),
    put(os_pids, [OsPid | get(os_pids)]),
    put({port, OsPid}, Port),
    {ok, _} = expect_line(Port, <<"started">>, 10000),
    OsPid.

expect_line(Port, Text, Timeout) ->
    receive
        {Port, {data, {eol, Line}}} ->
            case binary:match(Line, Text) of
                nomatch -> expect_line(Port, Text, Timeout);
                _ -> {ok, Line}
            end;
        {Port, {exit_status, S}} -> {exited, S}
    after Timeout -> timeout
    end.

%% The exit status of the node with that OS pid, once it ends (within Timeout).
exit_status(OsPid, Timeout) ->
    Port = get({port, OsPid}),
    receive
        {Port, {exit_status, S}} -> S;
        {Port, {data, _}} -> exit_status(OsPid, Timeout)
    after Timeout -> timeout
    end.

%% Prints what the node with that OS pid has written and this script not read yet (its lines
%% wait in the mailbox), the last Max of them: for a failing case's report.
print_output(OsPid, Max) ->
    Port = get({port, OsPid}),
    Lines = drain_lines(Port, []),
    Last = lists:nthtail(max(0, length(Lines) - Max), Lines),
    io:format("     --- last ~b lines of OS pid ~b ---~n", [length(Last), OsPid]),
    [io:format("     | ~s~n", [L]) || L <- Last],
    ok.

drain_lines(Port, Acc) ->
    receive
        {Port, {data, {_, Line}}} -> drain_lines(Port, [Line | Acc])
    after 0 -> lists:reverse(Acc)
    end.

cleanup() ->
    [os:cmd("kill -9 " ++ integer_to_list(P) ++ " 2>/dev/null") || P <- get(os_pids)],
    ok.

%% Polls an observable state every 10 ms for up to Ms.
wait_until(Pred) -> wait_until(Pred, 5000).
wait_until(Pred, Ms) -> wait_until_deadline(Pred, erlang:monotonic_time(millisecond) + Ms).
wait_until_deadline(Pred, Deadline) ->
    case Pred() of
        true -> ok;
        false ->
            case erlang:monotonic_time(millisecond) > Deadline of
                true -> timeout;
                false -> receive after 10 -> wait_until_deadline(Pred, Deadline) end
            end
    end.

%% The hypha CLI: {ExitStatus, Output}.
cli(Args) ->
    collect(open_port({spawn_executable, get(hypha)},
                      [{args, Args ++ ["--cookie", get(cookie)]}, binary, exit_status, stderr_to_stdout]), <<>>).

collect(Port, Acc) ->
    receive
        {Port, {data, D}} -> collect(Port, <<Acc/binary, D/binary>>);
        {Port, {exit_status, S}} -> {S, Acc}
    after 20000 -> timeout
    end.

%% hypha prints a pid with its node: <'node@host'.Id.Serial>
pid_text(P) ->
    [_, Id, Serial] = string:lexemes(pid_to_list(P), "<.>"),
    iolist_to_binary(io_lib:format("<'~s'.~s.~s>", [node(P), Id, Serial])).

run_case(F) ->
    {name, Name} = erlang:fun_info(F, name),
    T0 = erlang:monotonic_time(millisecond),
    {_, {H, Mi, Se}} = calendar:system_time_to_universal_time(erlang:system_time(millisecond), millisecond),
    At = io_lib:format("~2..0b:~2..0b:~2..0b.~3..0b", [H, Mi, Se, erlang:system_time(millisecond) rem 1000]),
    R = try F() of
            ok -> ok;
            Other -> {fail, Other}
        catch
            C:E:S -> {fail, {C, E, hd(S)}}
        end,
    Ms = erlang:monotonic_time(millisecond) - T0,
    case R of
        ok -> io:format("ok   ~s (~b ms from ~s UTC)~n", [Name, Ms, At]);
        {fail, Why} -> io:format("FAIL ~s (~b ms from ~s UTC): ~p~n", [Name, Ms, At, Why])
    end,
    R.
