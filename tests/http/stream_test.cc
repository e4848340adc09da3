// http::Stream over a real loopback server: the head, pushed pieces in
// order, a consumer that never reads is dropped without blocking the
// sender, a client's close ends the stream, Stop() ends streams at once.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "core/mutex.h"
#include "gtest/gtest.h"
#include "http/server.h"

namespace bourse::http {
namespace {

using namespace std::chrono_literals;

class StreamService : public Service {
 public:
  void Serve(Request q, Responder respond) override {
    if (q.path != "/s") {
      respond({.status = 200, .body = "{}"});
      return;
    }
    Response head{.status = 200, .content_type = "text/event-stream", .body = ""};
    auto s = respond.OpenStream(std::move(head), max_queued);
    core::MutexLock l(&mu);
    stream = std::move(s);
  }
  Response Refusal(int status, std::string_view m) override {
    return {.status = status, .body = std::string(m)};
  }
  std::shared_ptr<Stream> Get() {
    for (int i = 0; i < 500; ++i) {
      {
        core::MutexLock l(&mu);
        if (stream) return stream;
      }
      std::this_thread::sleep_for(10ms);
    }
    return nullptr;
  }
  size_t max_queued = 1 << 16;
  core::Mutex mu;
  std::shared_ptr<Stream> stream GUARDED_BY(mu);
};

class StreamTest : public ::testing::Test {
 protected:
  void Start(int write_timeout_s = 10) {
    Server::Options o;
    o.port = 0;
    o.io_threads = 1;
    o.write_timeout_s = write_timeout_s;
    o.stop_timeout_s = 5;
    server_ = std::make_unique<Server>(&service_, o);
    ASSERT_TRUE(server_->Bind().ok());
    thread_ = std::thread([this] { server_->Run(); });
  }
  void TearDown() override {
    if (server_) server_->Stop();
    if (thread_.joinable()) thread_.join();
  }
  // A connected socket with a small receive buffer (so "never reads" fills
  // quickly) that has sent GET /s.
  int Open(int rcvbuf = 0) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (rcvbuf > 0) ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(server_->port()));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    std::string req = "GET /s HTTP/1.1\r\nHost: x\r\n\r\n";
    EXPECT_EQ(::send(fd, req.data(), req.size(), 0), static_cast<ssize_t>(req.size()));
    return fd;
  }
  // Reads until `want` appears or 5 s pass.
  static std::string ReadUntil(int fd, const std::string& want) {
    std::string got;
    timeval tv{.tv_sec = 0, .tv_usec = 200000};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    auto end = std::chrono::steady_clock::now() + 5s;
    while (got.find(want) == std::string::npos && std::chrono::steady_clock::now() < end) {
      char buf[4096];
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n == 0) break;
      if (n > 0) got.append(buf, static_cast<size_t>(n));
    }
    return got;
  }
  static bool EventuallyClosed(const std::shared_ptr<Stream>& s) {
    for (int i = 0; i < 500 && s->open(); ++i) std::this_thread::sleep_for(10ms);
    return !s->open();
  }

  StreamService service_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
};

TEST_F(StreamTest, HeadThenPiecesInOrderAndNoContentLength) {
  Start();
  int fd = Open();
  auto s = service_.Get();
  ASSERT_NE(s, nullptr);
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(s->Send("data: " + std::to_string(i) + "\n\n"));
  std::string got = ReadUntil(fd, "data: 99\n\n");
  ASSERT_NE(got.find("HTTP/1.1 200 OK\r\n"), std::string::npos) << got;
  EXPECT_NE(got.find("Content-Type: text/event-stream\r\n"), std::string::npos);
  EXPECT_NE(got.find("Connection: close\r\n"), std::string::npos);
  EXPECT_EQ(got.find("Content-Length"), std::string::npos);
  std::string body = got.substr(got.find("\r\n\r\n") + 4);
  std::string want;
  for (int i = 0; i < 100; ++i) want += "data: " + std::to_string(i) + "\n\n";
  EXPECT_EQ(body, want);
  s->Close();
  char c;
  EXPECT_EQ(::recv(fd, &c, 1, 0), 0);  // the server closed the connection
  ::close(fd);
}

TEST_F(StreamTest, ConsumerThatNeverReadsIsDroppedWithoutBlockingTheSender) {
  service_.max_queued = 256 * 1024;
  Start();
  int fd = Open(4096);
  auto s = service_.Get();
  ASSERT_NE(s, nullptr);
  std::string piece(1024, 'x');
  piece += "\n\n";
  auto t0 = std::chrono::steady_clock::now();
  int sent = 0;
  // Never reads: the kernel's buffers fill, then the stream's bound.
  while (s->Send(piece) && sent < 1000000) {
    ++sent;
    if (sent % 256 == 0) std::this_thread::sleep_for(1ms);
  }
  EXPECT_FALSE(s->open());
  EXPECT_LT(sent, 1000000);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 30s);
  EXPECT_FALSE(s->Send(piece));  // stays ended
  ::close(fd);
}

TEST_F(StreamTest, ClientCloseEndsTheStream) {
  Start();
  int fd = Open();
  auto s = service_.Get();
  ASSERT_NE(s, nullptr);
  ASSERT_TRUE(s->Send("data: a\n\n"));
  ReadUntil(fd, "data: a");
  ::close(fd);
  EXPECT_TRUE(EventuallyClosed(s));
}

TEST_F(StreamTest, StopEndsStreamsAtOnce) {
  Start();
  int fd = Open();
  auto s = service_.Get();
  ASSERT_NE(s, nullptr);
  auto t0 = std::chrono::steady_clock::now();
  server_->Stop();
  thread_.join();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);  // not the 5 s stop timeout
  EXPECT_FALSE(s->open());
  EXPECT_FALSE(s->Send("data: late\n\n"));
  ::close(fd);
}

TEST_F(StreamTest, DroppingTheStreamClosesTheConnection) {
  Start();
  int fd = Open();
  {
    auto s = service_.Get();
    ASSERT_NE(s, nullptr);
    ASSERT_TRUE(s->Send("data: a\n\n"));
    core::MutexLock l(&service_.mu);
    service_.stream.reset();
  }
  // What was queued is dropped with it; the connection is closed (EOF well
  // before ReadUntil's 5 s).
  auto t0 = std::chrono::steady_clock::now();
  ReadUntil(fd, "never");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
  ::close(fd);
}

}  // namespace
}  // namespace bourse::http
