// hypha cache put NODE CACHE 'KEY' 'VALUE' [--ttl MS] [--cookie C]
//   Stores VALUE under KEY (both in Erlang syntax) in NODE's cache CACHE: prints ok once the
//   write is acknowledged (two nodes hold it when two exist), else the error term (exit 1).
// hypha cache get NODE CACHE 'KEY'
//   Prints the value, or not_found (exit 1).
// hypha cache delete NODE CACHE 'KEY'
//   Prints ok.
// hypha cache size NODE CACHE [--local]
//   The number of keys in the cache; with --local, of the entries NODE itself holds.
// hypha cache stats NODE CACHE
//   NODE's counters as a map: hits, misses, writes, evictions, expirations, local_size, members,
//   ready.
// A cache NODE does not run: {error,{no_such_cache,<<"CACHE">>}} (exit 1).
#include "cache_commands.hpp"

#include <CLI/CLI.hpp>

#include "client.hpp"
#include "hypha/term/text.hpp"

namespace hypha::cli {

namespace {

struct Args {
  std::string node, cache, key, value;
  std::int64_t ttl = -1;
  bool local = false;
};

const Atom kMod("hypha_cache");

// KEY or VALUE in Erlang syntax; nullopt after saying why not.
std::optional<Term> term_arg(const std::string& what, const char* which, const std::string& text) {
  auto t = parse_term(text);
  if (!t) return fail(what + ": " + which + ": " + t.error().message()), std::nullopt;
  return *t;
}

std::optional<Term> ask(const Args& a, const ClientOptions& o, const std::string& what, const char* fun,
                        std::vector<Term> rest) {
  std::vector<Term> args{Term::binary(a.cache)};
  for (Term& t : rest) args.push_back(std::move(t));
  return rpc_on(a.node, o, what, kMod, Atom(fun), std::move(args));
}

int run_put(const Args& a, const ClientOptions& o) {
  auto k = term_arg("cache put", "KEY", a.key);
  auto v = term_arg("cache put", "VALUE", a.value);
  if (!k || !v) return 1;
  auto r = a.ttl >= 0 ? ask(a, o, "cache put", "put", {*k, *v, Term(a.ttl)}) : ask(a, o, "cache put", "put", {*k, *v});
  if (!r) return 1;
  return print_result(*r, r->is_atom(Atom("ok")));
}

int run_get(const Args& a, const ClientOptions& o) {
  auto k = term_arg("cache get", "KEY", a.key);
  if (!k) return 1;
  auto r = ask(a, o, "cache get", "get", {*k});
  if (!r) return 1;
  if (r->is_tuple() && r->tuple_size() == 2 && (*r)[0].is_atom(Atom("ok"))) return print_result((*r)[1], true);
  return print_result(*r, false);
}

int run_delete(const Args& a, const ClientOptions& o) {
  auto k = term_arg("cache delete", "KEY", a.key);
  if (!k) return 1;
  auto r = ask(a, o, "cache delete", "delete", {*k});
  if (!r) return 1;
  return print_result(*r, r->is_atom(Atom("ok")));
}

int run_size(const Args& a, const ClientOptions& o) {
  auto r = ask(a, o, "cache size", a.local ? "local_size" : "size", {});
  if (!r) return 1;
  return print_result(*r, r->is_integer());
}

int run_stats(const Args& a, const ClientOptions& o) {
  auto r = ask(a, o, "cache stats", "stats", {});
  if (!r) return 1;
  return print_result(*r, r->is_map());
}

}  // namespace

void add_cache_commands(CLI::App& app, int& exit_code) {
  auto* cache = app.add_subcommand("cache", "cluster caches: put, get, delete, size, stats");
  cache->require_subcommand(1);
  struct Command {
    const char* name;
    const char* help;
    int (*run)(const Args&, const ClientOptions&);
    int terms;  // KEY, then VALUE
  };
  const Command commands[] = {
      {"put", "Store VALUE under KEY (Erlang syntax): ok once acknowledged", run_put, 2},
      {"get", "The value under KEY, or not_found (exit 1)", run_get, 1},
      {"delete", "Remove KEY: ok", run_delete, 1},
      {"size", "The number of keys in the cache (--local: held by NODE)", run_size, 0},
      {"stats", "NODE's counters: a map with hits, misses, writes, evictions, expirations", run_stats, 0},
  };
  for (const Command& cmd : commands) {
    auto a = std::make_shared<Args>();
    auto o = std::make_shared<ClientOptions>();
    auto* c = cache->add_subcommand(cmd.name, cmd.help);
    c->add_option("NODE", a->node, "a hypha node running the cache, alive@host")->required();
    c->add_option("CACHE", a->cache, "the cache's name")->required();
    if (cmd.terms >= 1) c->add_option("KEY", a->key, "the key, in Erlang syntax")->required();
    if (cmd.terms >= 2) c->add_option("VALUE", a->value, "the value, in Erlang syntax")->required();
    if (std::string_view(cmd.name) == "put")
      c->add_option("--ttl", a->ttl, "expire it after MS milliseconds")->check(CLI::Range(std::int64_t{0}, std::int64_t{1} << 50));
    if (std::string_view(cmd.name) == "size") c->add_flag("--local", a->local, "count only the entries NODE holds");
    add_client_options(c, *o);
    c->callback([a, o, run = cmd.run, &exit_code] { exit_code = run(*a, *o); });
  }
}

}  // namespace hypha::cli
