// The dashboard's static files (broker/static_files.h) served by the broker's
// dispatcher over a real loopback socket, with raw requests: content types,
// ETag and 304, caching, HEAD, what is refused (traversal, npm's files,
// other packages), and /v1 left as it was.
#include "broker/static_files.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>

#include "broker/metrics.h"
#include "broker/router.h"
#include "broker/server.h"

namespace bourse::broker {
namespace {

namespace fs = std::filesystem;

void Write(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}

struct Reply {
  int status = 0;
  std::string head;  // status line and fields
  std::string body;
  std::string Field(const std::string& name) const {
    size_t at = head.find("\r\n" + name + ": ");
    if (at == std::string::npos) return "";
    at += name.size() + 4;
    return head.substr(at, head.find("\r\n", at) - at);
  }
};

class StaticFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("bourse-web-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    Write(dir_ / "index.html", "<!doctype html><title>t</title>");
    Write(dir_ / "app.js", "export const a = 1;\n");
    Write(dir_ / "views/market.js", "export const m = 2;\n");
    Write(dir_ / "style.css", "body{}");
    Write(dir_ / "icon.svg", "<svg/>");
    Write(dir_ / "data.json", "{}");
    Write(dir_ / "secret.bin", "not served");
    Write(dir_ / ".git/config.js", "hidden");
    Write(dir_ / "package.json",
          R"({"dependencies":{"uplot":"1.6.32"},"devDependencies":{"x":"1"}})");
    Write(dir_ / "package-lock.json", "{}");
    Write(dir_ / "node_modules/uplot/dist/uPlot.esm.js", "export default 1;");
    Write(dir_ / "node_modules/uplot/dist/uPlot.min.css", ".u{}");
    Write(dir_ / "node_modules/uplot/package.json", "{}");
    Write(dir_ / "node_modules/x/dist/x.js", "dev only");
    router_.Add({.method = "GET",
                 .pattern = "/v1/ping",
                 .handler = [](const ApiRequest&) -> core::Result<ApiResponse> {
                   return JsonResponse(200, {{"pong", true}});
                 }});
  }
  void TearDown() override {
    if (server_) server_->Stop();
    if (runner_.joinable()) runner_.join();
    fs::remove_all(dir_);
  }
  void Start(const StaticFiles* files) {
    HttpServer::Options o;
    o.port = 0;
    o.access_log = nullptr;
    o.static_files = files;
    server_ = std::make_unique<HttpServer>(&router_, o, &metrics_, [] { return int64_t{0}; });
    ASSERT_TRUE(server_->Bind().ok());
    runner_ = std::thread([this] { server_->Run(); });
  }
  // One request on its own connection, read until the server closes it.
  Reply Raw(const std::string& method, const std::string& target, const std::string& extra = "") {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(server_->port()));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string req =
        method + " " + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + extra + "\r\n";
    EXPECT_EQ(::send(fd, req.data(), req.size(), 0), static_cast<ssize_t>(req.size()));
    std::string all;
    char buf[4096];
    for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) all.append(buf, n);
    ::close(fd);
    Reply r;
    size_t end = all.find("\r\n\r\n");
    if (end == std::string::npos) return r;
    r.head = all.substr(0, end);
    r.body = all.substr(end + 4);
    r.status = std::stoi(all.substr(9, 3));
    return r;
  }
  StaticFiles Load() {
    auto files = StaticFiles::Load(dir_.string());
    EXPECT_TRUE(files.ok()) << files.status().ToString();
    return std::move(files).value();
  }

  fs::path dir_;
  Router router_;
  Metrics metrics_;
  std::unique_ptr<HttpServer> server_;
  std::thread runner_;
};

TEST_F(StaticFilesTest, ServesEachFileWithItsTypeAndCaching) {
  StaticFiles files = Load();
  Start(&files);
  struct Case {
    std::string path, type, cache, body;
  } cases[] = {
      {"/", "text/html; charset=utf-8", "no-cache", "<!doctype html><title>t</title>"},
      {"/index.html", "text/html; charset=utf-8", "no-cache", "<!doctype html><title>t</title>"},
      {"/app.js", "text/javascript; charset=utf-8", "no-cache", "export const a = 1;\n"},
      {"/views/market.js", "text/javascript; charset=utf-8", "no-cache", "export const m = 2;\n"},
      {"/style.css", "text/css; charset=utf-8", "no-cache", "body{}"},
      {"/icon.svg", "image/svg+xml", "no-cache", "<svg/>"},
      {"/data.json", "application/json", "no-cache", "{}"},
      {"/vendor/uplot/uPlot.esm.js", "text/javascript; charset=utf-8", "public, max-age=604800",
       "export default 1;"},
      {"/vendor/uplot/uPlot.min.css", "text/css; charset=utf-8", "public, max-age=604800", ".u{}"},
  };
  for (const Case& c : cases) {
    Reply r = Raw("GET", c.path);
    EXPECT_EQ(r.status, 200) << c.path;
    EXPECT_EQ(r.Field("Content-Type"), c.type) << c.path;
    EXPECT_EQ(r.Field("Cache-Control"), c.cache) << c.path;
    EXPECT_EQ(r.body, c.body) << c.path;
    EXPECT_EQ(r.Field("ETag").size(), 34u) << c.path;  // "<32 hex>"
  }
}

TEST_F(StaticFilesTest, IfNoneMatchAnswers304AndHeadHasNoBody) {
  StaticFiles files = Load();
  Start(&files);
  std::string etag = Raw("GET", "/app.js").Field("ETag");
  ASSERT_FALSE(etag.empty());
  for (const std::string& inm : {etag, "W/" + etag, "\"other\", " + etag, std::string("*")}) {
    Reply r = Raw("GET", "/app.js", "If-None-Match: " + inm + "\r\n");
    EXPECT_EQ(r.status, 304) << inm;
    EXPECT_EQ(r.body, "") << inm;
    EXPECT_EQ(r.Field("ETag"), etag);
    EXPECT_EQ(r.Field("Cache-Control"), "no-cache");
    EXPECT_EQ(r.Field("Content-Length"), "") << "a 304 has no Content-Length of 0";
  }
  Reply changed = Raw("GET", "/app.js", "If-None-Match: \"0123\"\r\n");
  EXPECT_EQ(changed.status, 200);
  EXPECT_EQ(changed.body, "export const a = 1;\n");
  EXPECT_NE(Raw("GET", "/style.css").Field("ETag"), etag);

  Reply head = Raw("HEAD", "/app.js");
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.body, "");
  EXPECT_EQ(head.Field("Content-Length"), "20");
  EXPECT_EQ(head.Field("ETag"), etag);
}

TEST_F(StaticFilesTest, RefusesTraversalAndWhatIsNotTheApplication) {
  Write(dir_.parent_path() / "bourse-web-outside.js", "SECRET-OUTSIDE");
  StaticFiles files = Load();
  Start(&files);
  for (const char* path :
       {"/../bourse-web-outside.js", "/%2e%2e/bourse-web-outside.js",
        "/views/..%2f..%2fbourse-web-outside.js", "/views/%2E%2E/app.js", "/./app.js", "//app.js",
        "/views//market.js", "/app.js%00", "/app%00.js", "/views%5cmarket.js", "/secret.bin",
        "/package.json", "/package-lock.json", "/.git/config.js",
        "/node_modules/uplot/dist/uPlot.esm.js", "/vendor/uplot/../../app.js", "/vendor/x/x.js",
        "/vendor/uplot/package.json", "/nope.html"}) {
    Reply r = Raw("GET", path);
    EXPECT_EQ(r.status, 404) << path;
    EXPECT_NE(r.body.find("\"code\":\"not_found\""), std::string::npos) << path << ": " << r.body;
    EXPECT_EQ(r.body.find("SECRET-OUTSIDE"), std::string::npos) << path;
  }
  EXPECT_EQ(Raw("GET", "/%zz").status, 400);  // the transport refuses a bad escape
  fs::remove(dir_.parent_path() / "bourse-web-outside.js");
}

TEST_F(StaticFilesTest, ApiPathsAreNotFiles) {
  Write(dir_ / "v1/ping.json", "{\"file\":true}");
  StaticFiles files = Load();
  Start(&files);
  EXPECT_EQ(Raw("GET", "/v1/ping").body, "{\"pong\":true}");
  Reply r = Raw("GET", "/v1/ping.json");
  EXPECT_EQ(r.status, 404);
  EXPECT_NE(r.body.find("no such endpoint: GET /v1/ping.json"), std::string::npos) << r.body;
  Reply post = Raw("POST", "/app.js", "Content-Length: 0\r\n");
  EXPECT_EQ(post.status, 404);
  EXPECT_EQ(post.body.find("export"), std::string::npos);
}

TEST_F(StaticFilesTest, WithoutAWebDirectoryTheRootSaysTheDashboardIsNotInstalled) {
  Start(nullptr);
  Reply r = Raw("GET", "/");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.Field("Content-Type"), "application/json");
  EXPECT_NE(r.body.find("the dashboard is not installed"), std::string::npos) << r.body;
  EXPECT_NE(Raw("GET", "/app.js").body.find("no such endpoint"), std::string::npos);
}

TEST_F(StaticFilesTest, LoadRefusesAMissingDirectoryAndOversizedFiles) {
  auto missing = StaticFiles::Load((dir_ / "nowhere").string());
  EXPECT_EQ(missing.status().code(), core::StatusCode::kNotFound);
  fs::remove(dir_ / "index.html");
  auto no_index = StaticFiles::Load(dir_.string());
  EXPECT_EQ(no_index.status().code(), core::StatusCode::kNotFound);
  EXPECT_NE(no_index.status().message().find("index.html"), std::string::npos);
  Write(dir_ / "index.html", "x");
  Write(dir_ / "big.js", std::string(StaticFiles::kMaxFileBytes + 1, 'x'));
  auto big = StaticFiles::Load(dir_.string());
  EXPECT_EQ(big.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_NE(big.status().message().find("big.js"), std::string::npos) << big.status().message();
}

TEST(EtagMatchesTest, ComparesListsWeaklyAndStar) {
  EXPECT_TRUE(EtagMatches("\"a\"", "\"a\""));
  EXPECT_TRUE(EtagMatches(" W/\"a\" ", "\"a\""));
  EXPECT_TRUE(EtagMatches("\"b\",\"a\"", "\"a\""));
  EXPECT_TRUE(EtagMatches("*", "\"a\""));
  EXPECT_FALSE(EtagMatches("\"b\"", "\"a\""));
  EXPECT_FALSE(EtagMatches("a", "\"a\""));
  EXPECT_FALSE(EtagMatches("", "\"a\""));
}

}  // namespace
}  // namespace bourse::broker
