%% The BEAM side of the failover benchmark (bench/sup_failover.escript): what an Erlang team
%% builds without Horde (not packaged in Debian): on every node a watcher that, when a node goes,
%% starts the children nobody holds any more, each on the node erlang:phash2 picks among the live
%% ones, unique through OTP's global. The hypha side is hypha_sup.
-module(beam_failover).
-export([start/2]).

%% Starts the watcher on this node: Ids are every child of the cluster, Prefix names the nodes
%% that take part (the benchmark's driver does not).
start(Ids, Prefix) ->
    Pid = spawn(fun() -> init(Ids, Prefix) end),
    {ok, Pid}.

init(Ids, Prefix) ->
    register(beam_failover, self()),
    ok = net_kernel:monitor_nodes(true),
    adopt(Ids, Prefix),
    loop(Ids, Prefix).

loop(Ids, Prefix) ->
    receive
        {nodedown, _} -> adopt(Ids, Prefix);
        {nodeup, _} -> ok;
        retry -> adopt(Ids, Prefix)
    end,
    loop(Ids, Prefix).

members(Prefix) ->
    lists:sort([N || N <- [node() | nodes()], lists:prefix(Prefix, atom_to_list(N))]).

%% Ours that nobody holds: started and registered. A name still held by a process of a node that
%% went (global has not cleaned it up yet) is tried again in 10 ms.
adopt(Ids, Prefix) ->
    Members = members(Prefix),
    Mine = [Id || Id <- Ids, lists:nth(1 + erlang:phash2(Id, length(Members)), Members) =:= node()],
    Pending = [Id || Id <- Mine, not held(Id, Members)],
    [start_child(Id) || Id <- Pending],
    case [Id || Id <- Mine, not held(Id, Members)] of
        [] -> ok;
        _ -> erlang:send_after(10, self(), retry)
    end.

held(Id, Members) ->
    case global:whereis_name({child, Id}) of
        undefined -> false;
        P -> lists:member(node(P), Members)
    end.

start_child(Id) ->
    P = spawn(fun() -> receive stop -> ok end end),
    case global:register_name({child, Id}, P) of
        yes -> ok;
        no -> exit(P, kill)
    end.
