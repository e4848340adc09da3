// The agent's action log (clients/agent/action_log.h): its file is opened
// close-on-exec, so a command policy's child process does not inherit it.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "clients/agent/action_log.h"

namespace bourse::agent {
namespace {

// What a child started by popen (fork + exec of /bin/sh) has open.
std::string ChildFds() {
  FILE* p = ::popen("ls -l /proc/self/fd/ 2>/dev/null", "r");
  if (p == nullptr) return "";
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  ::pclose(p);
  return out;
}

TEST(AgentActionLogTest, LogFileIsNotInheritedByChildren) {
  std::string dir =
      std::filesystem::temp_directory_path() / ("agent-log-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/agent.log";
  {
    ActionLog log(path, /*max_bytes=*/64);
    log.Line("first");
    std::string fds = ChildFds();
    ASSERT_NE(fds.find(" -> "), std::string::npos) << fds;  // ls ran
    EXPECT_EQ(fds.find(path), std::string::npos) << fds;
    log.Line("a line long enough to rotate the file past sixty-four bytes");
    fds = ChildFds();
    EXPECT_EQ(fds.find(path), std::string::npos) << fds;  // the rotated file too
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace bourse::agent
