%% hypha_registry: the cluster registry of hypha nodes as an Erlang {via, Module, Name} module,
%% so BEAM code names processes in it as it would in global:
%%
%%   application:set_env(hypha, registry_node, 'a@127.0.0.1'),      % or hypha_registry:set_node/1
%%   {ok, Pid} = gen_server:start({via, hypha_registry, {job, 1}}, my_server, [], []),
%%   gen_server:call({via, hypha_registry, {job, 1}}, ping).
%%
%% In Elixir: GenServer.start_link(MyServer, arg, name: {:via, :hypha_registry, "job-1"}).
%%
%% Each callback is an rpc to the hypha node (which runs the registry and monitors the process:
%% when it exits, or its node goes, the name is gone on every hypha node). Names are any term.
%% A node that cannot be reached makes the callbacks fail with {hypha_registry, {badrpc, Why}}
%% (register_name answers no).
-module(hypha_registry).
-export([register_name/2, register_name/3, unregister_name/1, whereis_name/1, send/2,
         lookup/1, set_node/1, node/0]).

%% The hypha node asked: set_node/1, else the application env hypha/registry_node.
node() ->
    case persistent_term:get({?MODULE, node}, undefined) of
        undefined ->
            case application:get_env(hypha, registry_node) of
                {ok, N} when is_atom(N) -> N;
                _ -> erlang:error({hypha_registry, no_registry_node})
            end;
        N -> N
    end.

set_node(Node) when is_atom(Node) ->
    persistent_term:put({?MODULE, node}, Node),
    ok.

register_name(Name, Pid) when is_pid(Pid) ->
    case rpc:call(?MODULE:node(), hypha_registry, register_name, [Name, Pid]) of
        yes -> yes;
        _ -> no
    end.

register_name(Name, Pid, Meta) when is_pid(Pid) ->
    case rpc:call(?MODULE:node(), hypha_registry, register_name, [Name, Pid, Meta]) of
        yes -> yes;
        _ -> no
    end.

unregister_name(Name) ->
    _ = call(unregister_name, [Name]),
    ok.

whereis_name(Name) ->
    case call(whereis_name, [Name]) of
        Pid when is_pid(Pid) -> Pid;
        _ -> undefined
    end.

%% {Pid, Meta} or undefined.
lookup(Name) -> call(lookup, [Name]).

send(Name, Msg) ->
    case whereis_name(Name) of
        undefined -> exit({badarg, {Name, Msg}});
        Pid -> Pid ! Msg, Pid
    end.

call(F, A) ->
    case rpc:call(?MODULE:node(), hypha_registry, F, A) of
        {badrpc, Why} -> erlang:error({hypha_registry, {badrpc, Why}});
        V -> V
    end.
