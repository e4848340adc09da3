// Clock: injectable time, so ledger, auction and nodeguard logic is
// deterministic under test and replay (Envoy's TimeSource).
//
//   SystemClock clock;  int64_t now = clock.NowSeconds();
//   ManualClock test_clock(1'700'000'000'000);  test_clock.AdvanceMillis(500);
//
// Thread safety: both implementations are safe from any thread.
#pragma once

#include <atomic>
#include <cstdint>

namespace bourse::core {

class Clock {
 public:
  virtual ~Clock() = default;
  // Unix time in milliseconds (wall clock).
  virtual int64_t NowMillis() const = 0;
  int64_t NowSeconds() const { return NowMillis() / 1000; }
};

class SystemClock final : public Clock {
 public:
  int64_t NowMillis() const override;
  // A process-wide instance.
  static SystemClock& Get();
};

class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t millis = 0) : millis_(millis) {}
  int64_t NowMillis() const override { return millis_.load(); }
  void SetMillis(int64_t millis) { millis_.store(millis); }
  void SetSeconds(int64_t seconds) { millis_.store(seconds * 1000); }
  void AdvanceMillis(int64_t d) { millis_.fetch_add(d); }
  void AdvanceSeconds(int64_t d) { millis_.fetch_add(d * 1000); }

 private:
  std::atomic<int64_t> millis_;
};

}  // namespace bourse::core
