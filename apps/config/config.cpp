#include "config.hpp"

#include <cstdlib>

#include <algorithm>
#include <fstream>
#include <sstream>

#include <asio/ip/address.hpp>

#include "hypha/net/handshake.hpp"
#include "hypha/term/atom.hpp"

namespace hypha::config {

namespace {

std::string what_is(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date:
    case toml::node_type::time:
    case toml::node_type::date_time: return "a date or time";
    case toml::node_type::array: return "an array";
    case toml::node_type::table: return "a table";
    default: return "nothing";
  }
}

std::string join(std::string_view section, std::string_view key) {
  std::string s(section);
  if (!s.empty() && !key.empty()) s += '.';
  s += key;
  return s;
}

}  // namespace

std::string Error::text() const {
  std::ostringstream os;
  os << file;
  if (line > 0) os << ':' << line;
  os << ": ";
  if (!key.empty()) os << key << ": ";
  os << message;
  return os.str();
}

struct Reader::Impl {
  toml::table root;
  std::string file;
  std::set<std::string> read;    // keys read (present or not)
  std::set<std::string> whole;   // tables taken whole
  std::optional<Error> first;

  void note(Error e) {
    if (!first) first = std::move(e);
  }
  bool known(const std::string& path) const {
    if (read.count(path)) return true;
    for (std::string p = path;;) {  // a table taken whole, or one of its parents
      if (whole.count(p)) return true;
      const auto dot = p.rfind('.');
      if (dot == std::string::npos) return false;
      p.resize(dot);
    }
  }
  // Keys under `t` (at `path`) that nobody read, in the order of their lines.
  void unknown(const toml::table& t, const std::string& path, std::vector<Error>& out) const {
    for (const auto& [k, v] : t) {
      const std::string p = join(path, k.str());
      if (known(p)) continue;
      if (const toml::table* sub = v.as_table()) {
        if (sub->empty() && !read_under(p))
          out.push_back({file, v.source().begin.line, p, "unknown section"});
        unknown(*sub, p, out);
      } else if (const toml::array* arr = v.as_array(); arr && arr->is_array_of_tables()) {
        for (const auto& e : *arr) unknown(*e.as_table(), p, out);
      } else {
        out.push_back({file, k.source().begin.line ? k.source().begin.line : v.source().begin.line, p, "unknown key"});
      }
    }
  }
  bool read_under(const std::string& p) const {
    auto it = read.lower_bound(p + ".");
    return it != read.end() && it->rfind(p + ".", 0) == 0;
  }
};

namespace {

bool same_value(const toml::node& x, const toml::node& y) {
  if (x.type() != y.type()) return false;
  return x.visit([&](const auto& vx) {
    using N = std::remove_cvref_t<decltype(vx)>;
    const N* vy = dynamic_cast<const N*>(&y);
    return vy && vx == *vy;
  });
}

void changed_under(const toml::table* a, const toml::table* b, const std::string& prefix, std::set<std::string>& out) {
  std::set<std::string> keys;
  if (a)
    for (const auto& [k, v] : *a) keys.insert(std::string(k.str()));
  if (b)
    for (const auto& [k, v] : *b) keys.insert(std::string(k.str()));
  for (const std::string& k : keys) {
    const toml::node* x = a ? a->get(k) : nullptr;
    const toml::node* y = b ? b->get(k) : nullptr;
    const std::string key = prefix.empty() ? k : prefix + "." + k;
    const toml::table* tx = x ? x->as_table() : nullptr;
    const toml::table* ty = y ? y->as_table() : nullptr;
    if ((tx || !x) && (ty || !y) && (tx || ty)) {
      changed_under(tx, ty, key, out);
      if (!x || !y) out.insert(key);  // a section added or removed ([registry] alone is a switch)
    } else if (!x || !y || !same_value(*x, *y)) {
      out.insert(key);
    }
  }
}

}  // namespace

std::vector<std::string> changed_keys(const toml::table& before, const toml::table& after) {
  std::set<std::string> out;
  changed_under(&before, &after, "", out);
  return {out.begin(), out.end()};
}


Reader::Reader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Reader::Reader(Reader&&) noexcept = default;
Reader& Reader::operator=(Reader&&) noexcept = default;
Reader::~Reader() = default;

Result<Reader, Error> Reader::parse(std::string_view text, const std::string& name) {
  auto impl = std::make_unique<Impl>();
  impl->file = name;
  try {
    impl->root = toml::parse(text, name);
  } catch (const toml::parse_error& e) {
    return unexpected(Error{name, e.source().begin.line, "", std::string(e.description())});
  }
  return Reader(std::move(impl));
}

Result<Reader, Error> Reader::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return unexpected(Error{path, 0, "", "cannot read the file"});
  std::ostringstream text;
  text << in.rdbuf();
  return parse(text.str(), path);
}

const toml::table& Reader::root() const noexcept { return impl_->root; }
const std::string& Reader::file() const noexcept { return impl_->file; }
bool Reader::ok() const noexcept { return !impl_->first; }

void Reader::fail_at(const toml::node& where, std::string key, std::string expected) {
  impl_->note({impl_->file, where.source().begin.line, std::move(key), std::move(expected)});
}

void Reader::fail(std::string key, std::string expected) { impl_->note({impl_->file, 0, std::move(key), std::move(expected)}); }

const toml::node* Reader::find(std::string_view section, std::string_view key) {
  const std::string path = join(section, key);
  impl_->read.insert(path);
  const toml::node* at = &impl_->root;
  std::string walked;
  std::string_view rest = path;
  while (!rest.empty()) {
    const auto dot = rest.find('.');
    const std::string_view part = rest.substr(0, dot);
    rest = dot == std::string_view::npos ? std::string_view() : rest.substr(dot + 1);
    const toml::table* t = at->as_table();
    if (!t) {
      fail_at(*at, walked, "expected a table, got " + what_is(*at));
      return nullptr;
    }
    walked = join(walked, part);
    at = t->get(part);
    if (!at) return nullptr;
  }
  return at;
}

std::optional<std::string> Reader::string(std::string_view section, std::string_view key, const Check& check) {
  const toml::node* n = find(section, key);
  if (!n) return std::nullopt;
  if (!n->is_string()) {
    fail_at(*n, join(section, key), "expected a string, got " + what_is(*n));
    return std::nullopt;
  }
  std::string v = *n->value<std::string>();
  if (check)
    if (std::string expected = check(v); !expected.empty()) {
      fail_at(*n, join(section, key), expected + ", got \"" + v + "\"");
      return std::nullopt;
    }
  return v;
}

std::optional<bool> Reader::boolean(std::string_view section, std::string_view key) {
  const toml::node* n = find(section, key);
  if (!n) return std::nullopt;
  if (n->is_boolean()) return n->value<bool>();
  fail_at(*n, join(section, key), "expected true or false, got " + what_is(*n));
  return std::nullopt;
}

std::optional<std::int64_t> Reader::integer(std::string_view section, std::string_view key, std::int64_t min,
                                            std::int64_t max, std::string_view unit) {
  const toml::node* n = find(section, key);
  if (!n) return std::nullopt;
  std::string expected = "expected an integer of " + std::to_string(min) + ".." + std::to_string(max);
  if (!unit.empty()) expected += " (" + std::string(unit) + ")";
  if (!n->is_integer()) {
    fail_at(*n, join(section, key), expected + ", got " + what_is(*n));
    return std::nullopt;
  }
  const std::int64_t v = *n->value<std::int64_t>();
  if (v < min || v > max) {
    fail_at(*n, join(section, key), expected + ", got " + std::to_string(v));
    return std::nullopt;
  }
  return v;
}

std::optional<std::vector<std::string>> Reader::strings(std::string_view section, std::string_view key,
                                                        const Check& check) {
  const toml::node* n = find(section, key);
  if (!n) return std::nullopt;
  const toml::array* arr = n->as_array();
  if (!arr) {
    fail_at(*n, join(section, key), "expected an array of strings, got " + what_is(*n));
    return std::nullopt;
  }
  std::vector<std::string> out;
  for (const auto& e : *arr) {
    if (!e.is_string()) {
      fail_at(e, join(section, key), "expected an array of strings, got " + what_is(e) + " in it");
      return std::nullopt;
    }
    std::string v = *e.value<std::string>();
    if (check)
      if (std::string expected = check(v); !expected.empty()) {
        fail_at(e, join(section, key), expected + ", got \"" + v + "\"");
        return std::nullopt;
      }
    out.push_back(std::move(v));
  }
  return out;
}

bool Reader::present(std::string_view section) {
  // Not find(): a section marked read would hide its unknown keys.
  const toml::node* n = impl_->root.as_table()->get(section);
  if (!n) return false;
  if (const toml::table* t = n->as_table()) {
    if (t->empty()) impl_->read.insert(std::string(section));  // "[registry]" alone is known
    return true;
  }
  impl_->read.insert(std::string(section));
  fail_at(*n, std::string(section), "expected a table, got " + what_is(*n));
  return false;
}

const toml::table* Reader::table(std::string_view section) {
  const auto dot = section.rfind('.');
  const toml::node* n = dot == std::string_view::npos ? find("", section) : find(section.substr(0, dot), section.substr(dot + 1));
  impl_->whole.insert(std::string(section));
  if (!n) return nullptr;
  if (const toml::table* t = n->as_table()) return t;
  fail_at(*n, std::string(section), "expected a table, got " + what_is(*n));
  return nullptr;
}

const toml::array* Reader::tables(std::string_view key) {
  const toml::node* n = find("", key);
  impl_->whole.insert(std::string(key));
  if (!n) return nullptr;
  if (const toml::array* a = n->as_array(); a && a->is_array_of_tables()) return a;
  fail_at(*n, std::string(key), "expected [[" + std::string(key) + "]] tables, got " + what_is(*n));
  return nullptr;
}

Result<bool, Error> Reader::finish() const {
  if (impl_->first) return unexpected(*impl_->first);
  std::vector<Error> unknown;
  impl_->unknown(impl_->root, "", unknown);
  if (unknown.empty()) return true;
  return unexpected(*std::min_element(unknown.begin(), unknown.end(),
                                      [](const Error& a, const Error& b) { return a.line < b.line; }));
}

// ------------------------------------------------------------------------------------ [node]

namespace {

bool plain_node_name(const std::string& s) {
  if (s.find('@') != std::string::npos) return net::valid_node_name(s);
  return !s.empty() && s.size() <= 255 &&
         std::all_of(s.begin(), s.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-'; });
}

}  // namespace

void read_node(Reader& r, NodeOptions& o, std::vector<std::string>* inboxes) {
  using std::chrono::milliseconds;
  using std::chrono::seconds;
  constexpr std::string_view node = "node";
  auto node_name = [](const std::string& s) {
    return plain_node_name(s) ? "" : "expected a node name (alive@host, or alive for a short name)";
  };
  if (auto v = r.string(node, "name", node_name)) o.name = *v;
  if (auto v = r.string(node, "cookie", [](const std::string& s) { return s.empty() ? "expected a cookie" : ""; }))
    o.cookie = *v;
  if (auto v = r.boolean(node, "hidden")) o.hidden = *v;
  if (auto v = r.integer(node, "ticktime", 1, 86400, "seconds")) o.net_ticktime = seconds(*v);
  if (auto v = r.integer(node, "setuptime", 1, 3600, "seconds")) o.setup_timeout = seconds(*v);
  // [cluster] detect_ms: the node's own failure detection between hypha nodes (NodeOptions::detect).
  if (auto v = r.integer("cluster", "detect_ms", 0, 86400000, "milliseconds, 0: off")) o.detect = milliseconds(*v);
  if (auto v = r.integer(node, "port", 0, 65535)) o.listen_port = static_cast<std::uint16_t>(*v);
  if (auto v = r.integer(node, "threads", 0, 1024, "0: one per core")) o.threads = static_cast<unsigned>(*v);
  if (auto v = r.integer(node, "epmd_port", 0, 65535, "0: ERL_EPMD_PORT, else 4369")) o.epmd_port = static_cast<std::uint16_t>(*v);
  if (auto v = r.boolean(node, "embedded_epmd")) o.embedded_epmd = *v;
  if (auto v = r.string(node, "epmd_bind")) o.epmd_bind = *v;
  auto process_name = [](const std::string& s) {
    return s.empty() || s.size() > 255 ? "expected process names (atoms of 1..255 bytes)" : "";
  };
  if (auto v = r.strings(node, "inbox", process_name); v && inboxes) *inboxes = *v;

  constexpr std::string_view limits = "node.limits";
  constexpr std::int64_t kGiB = std::int64_t{1} << 30;
  if (auto v = r.integer(limits, "max_send_queue", 1024, 64 * kGiB, "bytes")) o.max_send_queue = static_cast<std::size_t>(*v);
  if (auto v = r.integer(limits, "max_send_wait_ms", 1, 3600000, "milliseconds")) o.max_send_wait = milliseconds(*v);
  if (auto v = r.integer(limits, "max_frame", 1024, 2 * kGiB, "bytes")) o.max_frame = static_cast<std::size_t>(*v);
  if (auto v = r.integer(limits, "max_decoded", 1024, 64 * kGiB, "bytes")) o.max_decoded_bytes = static_cast<std::size_t>(*v);
  if (auto v = r.integer(limits, "max_partial_frames", 0, 64 * kGiB, "bytes")) o.max_partial_frames = static_cast<std::size_t>(*v);
  if (auto v = r.integer(limits, "max_new_atoms_per_peer", 0, 100000000)) o.max_new_atoms_per_peer = static_cast<std::size_t>(*v);
  if (auto v = r.integer(limits, "max_connections", 1, 1000000)) o.max_connections = static_cast<std::size_t>(*v);
  if (auto v = r.integer(limits, "max_handshakes", 1, 100000)) o.max_handshakes = static_cast<std::size_t>(*v);
  if (auto v = r.integer(limits, "max_handshakes_per_source", 1, 100000)) o.max_handshakes_per_source = static_cast<std::size_t>(*v);
}

// ------------------------------------------------------------------------------------ log

void read_log(Reader& r, LogSettings& s) {
  if (auto v = r.string("log", "level", [](const std::string& t) {
        return log::parse_level(t) ? "" : "expected error, warn, info or debug";
      }))
    s.level = log::parse_level(*v);
  if (auto v = r.string("log", "format", [](const std::string& t) {
        return t == "human" || t == "json" ? "" : "expected human or json";
      }))
    s.format = *v == "json" ? log::Format::Json : log::Format::Human;
}

void apply_log(const LogSettings& s, const NodeOptions& node, const cluster::Options& services,
               const std::vector<std::string>& more) {
  log::add_secret(node.cookie);
  if (const char* env = std::getenv("HYPHA_COOKIE")) log::add_secret(env);
  log::add_secret(services.formation.gossip.secret);
  for (const auto& m : more) log::add_secret(m);
  if (s.level) log::set_level(*s.level);
  log::set_format(s.format);
}

// ------------------------------------------------------------------------------------ cluster

void read_cluster(Reader& r, cluster::Options& o) {
  auto scope_name = [](const std::string& s) {
    return s.empty() || s.size() > 255 ? "expected scope names (atoms of 1..255 bytes)" : "";
  };
  if (auto v = r.strings("pg", "scopes", scope_name)) {
    o.pg_scopes.clear();
    for (const auto& s : *v) {
      const Atom scope(s);
      if (std::find(o.pg_scopes.begin(), o.pg_scopes.end(), scope) == o.pg_scopes.end()) o.pg_scopes.push_back(scope);
    }
  }
  // [node] global_names: local processes registered in BEAM's global through BEAM peers.
  auto atom_name = [](const std::string& s) { return s.empty() || s.size() > 255 ? "expected process names" : ""; };
  if (auto v = r.strings("node", "global_names", atom_name)) {
    o.global_names.clear();
    for (const auto& n : *v) o.global_names.emplace_back(n);
  }
  auto node_name = [](const std::string& s) { return net::valid_node_name(s) ? "" : "expected node names (alive@host)"; };
  // [registry]: the cluster registry, hypha_registry.
  if (r.present("registry")) {
    registry::Options ro;
    if (auto v = r.integer("registry", "sync_interval_ms", 1, 60000, "milliseconds")) ro.sync_interval = std::chrono::milliseconds(*v);
    if (auto v = r.integer("registry", "anti_entropy_ms", 10, 3600000, "milliseconds")) ro.anti_entropy = std::chrono::milliseconds(*v);
    if (auto v = r.strings("registry", "members", node_name))
      for (const auto& m : *v) ro.members.emplace_back(m);
    o.registry = ro;
  }
  // [supervisor]: the distributed supervisor, hypha_sup (it keeps its children's ids in the registry).
  if (r.present("supervisor")) {
    dsup::Options so;
    auto distribution = [](const std::string& s) -> std::string {
      return s == "uniform" || s == "quorum" || s == "local" ? "" : "expected uniform, quorum or local";
    };
    if (auto v = r.string("supervisor", "distribution", distribution))
      so.distribution = *v == "local"    ? dsup::Distribution::Local
                        : *v == "quorum" ? dsup::Distribution::Quorum
                                         : dsup::Distribution::Uniform;
    auto sup_node = [](const std::string& s) { return net::valid_node_name(s) ? "" : "expected node names (alive@host)"; };
    if (auto v = r.strings("supervisor", "members", sup_node))
      for (const auto& m : *v) so.members.emplace_back(m);
    auto redistribution = [](const std::string& s) { return s == "passive" || s == "active" ? "" : "expected passive or active"; };
    if (auto v = r.string("supervisor", "redistribution", redistribution)) so.active_redistribution = *v == "active";
    if (auto v = r.integer("supervisor", "intensity", 0, 1000000)) so.intensity = static_cast<int>(*v);
    if (auto v = r.integer("supervisor", "period_ms", 1, 86400000, "milliseconds")) so.period = std::chrono::milliseconds(*v);
    o.supervisor = so;
    if (!o.registry) o.registry = registry::Options{};  // what it needs
  }
  // [tasks]: unique cluster tasks (children of hypha_sup, whose ids are in the registry).
  if (r.present("tasks")) {
    tasks::Options to;
    if (auto v = r.integer("tasks", "cleanup_ms", 0, 86400000 * 30LL, "milliseconds")) to.cleanup = std::chrono::milliseconds(*v);
    o.tasks = to;
    if (!o.supervisor) o.supervisor = dsup::Options{};
    if (!o.registry) o.registry = registry::Options{};
  }
  // [cluster]: formation.
  auto strategy = [](const std::string& s) -> std::string {
    if (s == "static" || s == "epmd" || s == "gossip" || s == "dns") return "";
    return "expected static, epmd, gossip or dns";
  };
  formation::Options& f = o.formation;
  if (auto v = r.strings("cluster", "strategies", strategy)) f.strategies = *v;
  if (auto v = r.boolean("cluster", "mesh")) f.mesh = *v;
  if (auto v = r.boolean("cluster", "disconnect_dropped")) f.disconnect_dropped = *v;
  if (auto v = r.strings("cluster.static", "nodes", node_name)) f.static_nodes = *v;
  auto host = [](const std::string& s) { return s.empty() || s.size() > 255 ? "expected host names or addresses" : ""; };
  if (auto v = r.strings("cluster.epmd", "hosts", host)) f.epmd_hosts = *v;
  if (auto v = r.integer("cluster.epmd", "interval_ms", 100, 3600000, "milliseconds")) f.epmd_interval = std::chrono::milliseconds(*v);
  // [cluster.dns]: libcluster's DNSPoll.
  constexpr std::string_view d = "cluster.dns";
  auto dns_name = [](const std::string& s) {
    return formation::dns_name_ok(s) ? "" : "expected a DNS name (labels of 1..63 bytes, 253 at most)";
  };
  if (auto v = r.string(d, "query", dns_name)) f.dns_query = *v;
  auto alive = [](const std::string& s) {
    return net::valid_node_name(s + "@h") ? "" : "expected the name part of the nodes (basename@address)";
  };
  if (auto v = r.string(d, "basename", alive)) f.dns_basename = *v;
  auto server = [](const std::string& s) -> std::string {
    auto ok = formation::dns_server_ok(s);
    return ok ? "" : ok.error();
  };
  if (auto v = r.string(d, "server", server)) f.dns_server = *v;
  if (auto v = r.integer(d, "interval_ms", 100, 3600000, "milliseconds")) f.dns_interval = std::chrono::milliseconds(*v);
  const bool dns = std::find(f.strategies.begin(), f.strategies.end(), "dns") != f.strategies.end();
  if (dns && r.ok() && f.dns_query.empty()) r.fail("cluster.dns.query", "missing: the dns strategy needs the name to look up");
  if (dns && r.ok() && f.dns_basename.empty()) r.fail("cluster.dns.basename", "missing: the dns strategy needs the nodes' basename");
  constexpr std::string_view g = "cluster.gossip";
  auto address = [](const std::string& s) {
    asio::error_code ec;
    (void)asio::ip::make_address(s, ec);
    return ec ? "expected an IP address" : "";
  };
  if (auto v = r.integer(g, "port", 1, 65535)) f.gossip.port = static_cast<std::uint16_t>(*v);
  if (auto v = r.string(g, "multicast_addr", address)) f.gossip.multicast_addr = *v;
  if (auto v = r.string(g, "if_addr", address)) f.gossip.if_addr = *v;
  if (auto v = r.string(g, "multicast_if", address)) f.gossip.multicast_if = *v;
  if (auto v = r.integer(g, "multicast_ttl", 0, 255)) f.gossip.multicast_ttl = static_cast<int>(*v);
  if (auto v = r.boolean(g, "broadcast_only")) f.gossip.broadcast_only = *v;
  if (auto v = r.string(g, "secret")) f.gossip.secret = *v;
  auto format = [](const std::string& s) { return s == "hypha" || s == "libcluster" ? "" : "expected hypha or libcluster"; };
  if (auto v = r.string(g, "format", format)) f.gossip.format = *v;
  auto cluster_name = [](const std::string& s) { return s.empty() || s.size() > 255 ? "expected a name of 1..255 bytes" : ""; };
  if (auto v = r.string(g, "cluster", cluster_name)) f.gossip.cluster = *v;
  if (auto v = r.integer(g, "interval_ms", 10, 3600000, "milliseconds")) f.gossip.interval = std::chrono::milliseconds(*v);
  const bool gossiping = std::find(f.strategies.begin(), f.strategies.end(), "gossip") != f.strategies.end();
  if (gossiping && f.gossip.format == "hypha" && f.gossip.secret.empty() && r.ok())
    r.fail("cluster.gossip.secret", "missing: the hypha gossip format needs a secret (or format = \"libcluster\")");
  // [[pubsub]]: name = "Elixir.MyApp.PubSub" (the atom as Erlang writes it), pool_size = 1..
  if (const toml::array* pubsubs = r.tables("pubsub")) {
    for (const toml::node& entry : *pubsubs) {
      const toml::table& t = *entry.as_table();
      pubsub::Options ps;
      for (const auto& [k, v] : t) {
        const std::string key = "pubsub." + std::string(k.str());
        if (k.str() == "name") {
          if (!v.is_string() || v.value<std::string>()->empty() || v.value<std::string>()->size() > 255)
            return r.fail_at(v, key, "expected the pubsub's name, as Erlang writes the atom (\"Elixir.MyApp.PubSub\")");
          ps.name = Atom(*v.value<std::string>());
        } else if (k.str() == "pool_size") {
          if (!v.is_integer() || *v.value<std::int64_t>() < 1 || *v.value<std::int64_t>() > 64)
            return r.fail_at(v, key, "expected an integer of 1..64");
          ps.pool_size = static_cast<unsigned>(*v.value<std::int64_t>());
        } else {
          return r.fail_at(v, key, "unknown key (name, pool_size)");
        }
      }
      if (ps.name == Atom()) return r.fail_at(entry, "pubsub.name", "missing: every [[pubsub]] needs a name");
      for (const auto& other : o.pubsubs)
        if (other.name == ps.name) return r.fail_at(entry, "pubsub.name", "a second [[pubsub]] of the same name");
      o.pubsubs.push_back(ps);
    }
  }
  // [[cache]]: name, mode = local | replicated | partitioned, replicas, max_entries, ...
  if (const toml::array* caches = r.tables("cache")) {
    for (const toml::node& entry : *caches) {
      const toml::table& t = *entry.as_table();
      cache::Options co;
      bool replicas_set = false;
      for (const auto& [k, value] : t) {
        const toml::node& v = value;  // (clang 14: lambdas may not capture structured bindings)
        const std::string key = "cache." + std::string(k.str());
        auto integer = [&](std::int64_t lo, std::int64_t hi) -> std::optional<std::int64_t> {
          if (!v.is_integer() || *v.value<std::int64_t>() < lo || *v.value<std::int64_t>() > hi) return std::nullopt;
          return *v.value<std::int64_t>();
        };
        auto range = [](std::int64_t lo, std::int64_t hi, const char* unit) {
          return "expected an integer of " + std::to_string(lo) + ".." + std::to_string(hi) + unit;
        };
        if (k.str() == "name") {
          const auto name = v.value<std::string>();
          auto atom = name ? Atom::make(*name) : Result<Atom, std::string>(unexpected(std::string()));
          if (!name || name->empty() || name->size() > 200 || !atom)
            return r.fail_at(v, key, "expected the cache's name (text of 1..200 bytes)");
          co.name = *atom;
        } else if (k.str() == "mode") {
          const auto m = v.value<std::string>();
          const auto mode = m ? cache::parse_mode(*m) : std::nullopt;
          if (!mode) return r.fail_at(v, key, "expected local, replicated or partitioned");
          co.mode = *mode;
        } else if (k.str() == "replicas") {
          auto n = integer(1, 16);
          if (!n) return r.fail_at(v, key, range(1, 16, ""));
          co.replicas = static_cast<unsigned>(*n);
          replicas_set = true;
        } else if (k.str() == "max_entries") {
          auto n = integer(0, 1'000'000'000'000LL);
          if (!n) return r.fail_at(v, key, range(0, 1'000'000'000'000LL, " (0: no limit)"));
          co.max_entries = static_cast<std::size_t>(*n);
        } else if (k.str() == "anti_entropy_ms") {
          auto n = integer(10, 3'600'000);
          if (!n) return r.fail_at(v, key, range(10, 3'600'000, " milliseconds"));
          co.anti_entropy = std::chrono::milliseconds(*n);
        } else if (k.str() == "tombstone_ms") {
          auto n = integer(1000, 30LL * 86'400'000);
          if (!n) return r.fail_at(v, key, range(1000, 30LL * 86'400'000, " milliseconds"));
          co.tombstone = std::chrono::milliseconds(*n);
        } else {
          return r.fail_at(v, key, "unknown key (name, mode, replicas, max_entries, anti_entropy_ms, tombstone_ms)");
        }
      }
      if (co.name == Atom()) return r.fail_at(entry, "cache.name", "missing: every [[cache]] needs a name");
      if (replicas_set && co.mode != cache::Mode::Partitioned)
        return r.fail_at(entry, "cache.replicas", "only for mode = \"partitioned\"");
      for (const auto& other : o.caches)
        if (other.name == co.name) return r.fail_at(entry, "cache.name", "a second [[cache]] of the same name");
      o.caches.push_back(co);
    }
  }
}

std::optional<RoutingTable> read_routing(Reader& r, bool required) {
  const toml::table* routing = r.table("routing");
  if (!routing) {
    if (required && r.ok()) r.fail("routing", "missing: the [routing] table is required");
    return std::nullopt;
  }
  if (const toml::node* hash_node = routing->get("hash")) {
    const toml::table* hash = hash_node->as_table();
    if (!hash) {
      r.fail_at(*hash_node, "routing.hash", "expected a table");
      return std::nullopt;
    }
    for (const auto& [k, v] : *hash)
      if (k.str() != "vnodes" && k.str() != "nodes") {
        r.fail_at(v, "routing.hash." + std::string(k.str()), "unknown key (vnodes, nodes)");
        return std::nullopt;
      }
    const toml::node* vnodes = hash->get("vnodes");
    if (vnodes && (!vnodes->is_integer() || *vnodes->value<std::int64_t>() < 1 || *vnodes->value<std::int64_t>() > 4096)) {
      r.fail_at(*vnodes, "routing.hash.vnodes", "expected an integer of 1..4096");
      return std::nullopt;
    }
    HashRing ring(static_cast<unsigned>(vnodes ? *vnodes->value<std::int64_t>() : 128));
    const toml::table* nodes = (*hash)["nodes"].as_table();
    if (!nodes || nodes->empty()) {
      r.fail_at(*hash_node, "routing.hash.nodes", "expected nodes = { \"name@host\" = weight, ... }");
      return std::nullopt;
    }
    for (const auto& [k, v] : *nodes) {
      const std::string node(k.str());
      auto weight = v.value<std::int64_t>();
      auto atom = Atom::make(node);
      if (!v.is_integer() || *weight < 1 || *weight > 1000 || !atom || node.find('@') == std::string::npos) {
        r.fail_at(v, "routing.hash.nodes.\"" + node + "\"", "expected a node name and a weight of 1..1000");
        return std::nullopt;
      }
      ring.add(*atom, static_cast<unsigned>(*weight));
    }
    return RoutingTable(std::move(ring));
  }
  std::vector<std::pair<std::string, std::string>> entries;
  for (const auto& [k, v] : *routing) {
    if (!v.is_string()) {
      r.fail_at(v, "routing.\"" + std::string(k.str()) + "\"", "expected the owner's node name (a string)");
      return std::nullopt;
    }
    entries.emplace_back(std::string(k.str()), *v.value<std::string>());
  }
  auto t = RangeTable::parse(entries);
  if (!t) {
    r.fail_at(*routing, "routing", t.error());
    return std::nullopt;
  }
  return RoutingTable(std::move(*t));
}


}  // namespace hypha::config
