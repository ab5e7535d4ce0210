// Where the cookie comes from when none is given: HYPHA_COOKIE, else ~/.erlang.cookie, created
// the way erl creates it (20 random capital letters, readable by the owner only).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>

#include "hypha/node/node.hpp"

namespace hypha {

Result<std::string, std::string> default_cookie() {
  if (const char* env = std::getenv("HYPHA_COOKIE"); env && *env) return std::string(env);
  const char* home = std::getenv("HOME");
  if (!home || !*home) return unexpected(std::string("no cookie: HOME is not set (use --cookie or HYPHA_COOKIE)"));
  const std::string path = std::string(home) + "/.erlang.cookie";
  std::ifstream in(path);
  if (in) {
    std::stringstream ss;
    ss << in.rdbuf();
    std::string c = ss.str();
    while (!c.empty() && (c.back() == '\n' || c.back() == '\r' || c.back() == ' ')) c.pop_back();
    if (c.empty()) return unexpected(path + " is empty");
    return c;
  }
  std::random_device rd;
  std::string c;
  for (int i = 0; i < 20; ++i) c.push_back(static_cast<char>('A' + rd() % 26));
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0400);
  if (fd < 0) return unexpected("cannot create " + path);
  const bool ok = ::write(fd, c.data(), c.size()) == static_cast<ssize_t>(c.size());
  ::close(fd);
  if (!ok) return unexpected("cannot write " + path);
  return c;
}

}  // namespace hypha
