// The log's lines: human and JSON formats, the pid of the process that logs, and secrets never
// written.
#include "hypha/base/log.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <mutex>
#include <vector>

namespace hypha {
namespace {

struct Lines {
  std::mutex mu;
  std::vector<std::string> lines;
  Lines() {
    log::set_sink([this](const std::string& l) {
      std::lock_guard lock(mu);
      lines.push_back(l);
    });
  }
  ~Lines() {
    log::set_sink({});
    log::set_format(log::Format::Human);
  }
  std::string last() {
    std::lock_guard lock(mu);
    return lines.empty() ? std::string() : lines.back();
  }
};

TEST(Log, HumanLinesNameNodeEventAndThePidOfTheProcessThatLogs) {
  Lines out;
  log::event(log::Level::Error, "a@host", "outside", {{"why", "two words"}});
  EXPECT_NE(out.last().find(" error node=a@host event=outside why=\"two words\"\n"), std::string::npos) << out.last();
  log::enter_process(85, 2);
  log::event(log::Level::Error, "a@host", "inside");
  log::leave_process();
  EXPECT_NE(out.last().find(" error node=a@host pid=<0.85.2> event=inside\n"), std::string::npos) << out.last();
}

TEST(Log, JsonLinesAreOneValidObjectEachWhateverTheBytes) {
  Lines out;
  log::set_format(log::Format::Json);
  log::enter_process(7, 0);
  log::event(log::Level::Warn, "a@host", "odd", {{"quote", "say \"hi\"\n\tnow"}, {"latin1", "caf\xe9"}, {"utf8", "caf\xc3\xa9"}});
  log::leave_process();
  const std::string line = out.last();
  ASSERT_FALSE(line.empty());
  EXPECT_EQ(line.back(), '\n');
  const auto j = nlohmann::json::parse(line);  // throws if not valid JSON (or not UTF-8)
  EXPECT_EQ(j["level"], "warn");
  EXPECT_EQ(j["node"], "a@host");
  EXPECT_EQ(j["pid"], "<0.7.0>");
  EXPECT_EQ(j["event"], "odd");
  EXPECT_EQ(j["quote"], "say \"hi\"\n\tnow");
  EXPECT_EQ(j["latin1"], "caf\xc3\xa9");  // é as Latin-1, written as its character
  EXPECT_EQ(j["utf8"], "caf\xc3\xa9");
  EXPECT_EQ(j["time"].get<std::string>().size(), std::string("2026-12-03T12:00:00.123Z").size());
}

TEST(Log, SecretsAreNeverWritten) {
  Lines out;
  log::add_secret("s3cr3t-cookie");
  log::add_secret("");  // ignored
  log::event(log::Level::Error, "a@host", "handshake", {{"detail", "peer sent s3cr3t-cookie twice: s3cr3t-cookie"}});
  EXPECT_EQ(out.last().find("s3cr3t-cookie"), std::string::npos) << out.last();
  EXPECT_NE(out.last().find("peer sent [redacted] twice: [redacted]"), std::string::npos) << out.last();
  log::set_format(log::Format::Json);
  log::event(log::Level::Error, "a@host", "handshake", {{"s3cr3t-cookie", "x"}});
  EXPECT_EQ(out.last().find("s3cr3t-cookie"), std::string::npos) << out.last();
}

TEST(Log, AShortSecretIsRedactedWhereItStandsAloneNotInsideWords) {
  Lines out;
  log::add_secret("zq");  // a two-letter cookie: redacting every "zq" would garble the log
  log::event(log::Level::Error, "zqa@host", "nodeup", {{"peer", "bzq@host"}, {"cookie", "zq"}, {"said", "it was zq."}});
  const std::string line = out.last();
  EXPECT_NE(line.find("zqa@host"), std::string::npos) << line;
  EXPECT_NE(line.find("bzq@host"), std::string::npos) << line;
  EXPECT_NE(line.find("cookie=[redacted]"), std::string::npos) << line;
  EXPECT_NE(line.find("it was [redacted]."), std::string::npos) << line;
  log::set_format(log::Format::Json);
  log::event(log::Level::Error, "a@host", "x", {{"cookie", "zq"}});
  EXPECT_NE(out.last().find("\"cookie\":\"[redacted]\""), std::string::npos) << out.last();
}

TEST(Log, LevelsParseAndName) {
  for (auto l : {log::Level::Error, log::Level::Warn, log::Level::Info, log::Level::Debug})
    EXPECT_EQ(log::parse_level(log::level_name(l)), l);
  EXPECT_FALSE(log::parse_level("loud"));
}

}  // namespace
}  // namespace hypha
