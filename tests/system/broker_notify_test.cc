// The broker under a Type=notify service manager (packaging/): READY=1 once
// it listens (with the port in STATUS=), STOPPING=1 when a signal stops it.
#include <gtest/gtest.h>
#include <stdlib.h>

#include "tests/system/broker_process.h"
#include "tests/system/notify_socket.h"

namespace bourse::systest {
namespace {

TEST(BrokerNotifyTest, TellsTheServiceManagerItIsReadyOnceItListensAndWhenItStops) {
  char tmpl[] = "/tmp/broker_notify_XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::filesystem::path dir = tmpl;
  NotifySocket notify(dir / "notify.sock");
  ASSERT_TRUE(notify.bound());
  setenv("NOTIFY_SOCKET", (dir / "notify.sock").c_str(), 1);
  auto b = BrokerProcess::Create();
  unsetenv("NOTIFY_SOCKET");
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  std::string ready = notify.Next(30);
  EXPECT_NE(ready.find("READY=1"), std::string::npos) << ready;
  std::string port = (*b)->url().substr((*b)->url().rfind(':') + 1);
  EXPECT_NE(ready.find("STATUS=listening on port " + port), std::string::npos) << ready;
  (*b)->Terminate();
  EXPECT_NE(notify.Next(10).find("STOPPING=1"), std::string::npos);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

}  // namespace
}  // namespace bourse::systest
