# The Elixir side of the libcluster gossip interop test: a node running libcluster 3.x's
# Cluster.Strategy.Gossip, written from its wire facts (interop-notes.md §5; libcluster is not
# packaged in Debian): UDP on PORT, group 233.252.1.32, TTL 1, loop on, SO_REUSEADDR and
# SO_REUSEPORT; a heartbeat at start and then at random times up to INTERVAL_MS, the bytes
# "heartbeat::" and term_to_binary(%{node: node()}), with a SECRET: AES-256-CBC under
# SHA-256(secret), a random IV first, PKCS#7 padding. A heartbeat of another node makes it connect
# to that node, as libcluster does (MODE connect), or only prints it (MODE passive, so that the
# test knows the other side connected because it read this node's heartbeats).
#   elixir --name N --cookie C libcluster_gossip.exs PORT SECRET INTERVAL_MS MODE [PEERS]
# (SECRET "" for none). Prints "heard NODE" for every heartbeat of another node, "nodeup NODE" for
# every connection and "dropped" for every packet it could not read; with PEERS (a number, for
# bench/form_gossip.sh), "up MS" at its start and "mesh MS" once it is connected to that many
# nodes (wall clock, ms).
defmodule Gossip do
  @group {233, 252, 1, 32}

  def run(port, secret, interval, mode) do
    :ok = :net_kernel.monitor_nodes(true)
    {:ok, socket} =
      :gen_udp.open(port, [
        :binary,
        active: true,
        ip: {0, 0, 0, 0},
        reuseaddr: true,
        broadcast: true,
        multicast_ttl: 1,
        multicast_loop: true,
        add_membership: {@group, {0, 0, 0, 0}},
        raw: {1, 15, <<1::native-32>>}
      ])
    send(self(), :heartbeat)
    loop(socket, port, secret, interval, mode)
  end

  defp loop(socket, port, secret, interval, mode) do
    receive do
      :heartbeat ->
        heartbeat(socket, port, secret)
        Process.send_after(self(), :heartbeat, :rand.uniform(interval))
      {:udp, _, _ip, _port, packet} ->
        case decode(packet, secret) do
          {:ok, %{node: n}} when n != node() ->
            IO.puts("heard #{n}")
            if mode == "connect", do: Node.connect(n)
          {:ok, _} -> :ok
          :error -> IO.puts("dropped")
        end
      {:nodeup, n} ->
        IO.puts("nodeup #{n}")
        if length(Node.list()) == Process.get(:peers), do: IO.puts("mesh #{System.os_time(:millisecond)}")
      {:nodedown, n} -> IO.puts("nodedown #{n}")
    end
    loop(socket, port, secret, interval, mode)
  end

  defp heartbeat(socket, port, secret) do
    :ok = :gen_udp.send(socket, @group, port, encode("heartbeat::" <> :erlang.term_to_binary(%{node: node()}), secret))
  end

  defp encode(plain, ""), do: plain
  defp encode(plain, secret) do
    iv = :crypto.strong_rand_bytes(16)
    pad = 16 - rem(byte_size(plain), 16)
    iv <> :crypto.crypto_one_time(:aes_256_cbc, :crypto.hash(:sha256, secret), iv, plain <> :binary.copy(<<pad>>, pad), true)
  end

  defp decode("heartbeat::" <> rest, ""), do: term(rest)
  defp decode(_, ""), do: :error
  defp decode(<<iv::binary-16, data::binary>>, secret) when rem(byte_size(data), 16) == 0 and data != "" do
    plain = :crypto.crypto_one_time(:aes_256_cbc, :crypto.hash(:sha256, secret), iv, data, false)
    pad = :binary.last(plain)
    if pad in 1..16 and pad <= byte_size(plain) do
      case binary_part(plain, 0, byte_size(plain) - pad) do
        "heartbeat::" <> rest -> term(rest)
        _ -> :error
      end
    else
      :error
    end
  end
  defp decode(_, _), do: :error

  # libcluster calls binary_to_term/1 unguarded; this peer is only ever fed by the test.
  defp term(bin) do
    try do
      {:ok, :erlang.binary_to_term(bin)}
    rescue
      _ -> :error
    end
  end
end

[port, secret, interval, mode | peers] = System.argv()
IO.puts("ready")
with [n] <- peers do
  Process.put(:peers, String.to_integer(n))
  IO.puts("up #{System.os_time(:millisecond)}")
end
Gossip.run(String.to_integer(port), secret, String.to_integer(interval), mode)
