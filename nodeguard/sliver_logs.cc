#include "nodeguard/sliver_logs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

namespace bourse::nodeguard {

namespace {

// Length of the UTF-8 sequence starting at s[i] when it is valid and
// printable (no C1 controls), else 0.
size_t Utf8Length(std::string_view s, size_t i) {
  unsigned char c = static_cast<unsigned char>(s[i]);
  size_t n = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c <= 0xdf ? 2 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return 0;
  }
  unsigned char c1 = static_cast<unsigned char>(s[i + 1]);
  if (n == 2 && c == 0xc2 && c1 < 0xa0) return 0;   // C1 controls
  if (n == 3 && c == 0xe0 && c1 < 0xa0) return 0;   // overlong
  if (n == 3 && c == 0xed && c1 >= 0xa0) return 0;  // surrogates
  if (n == 4 && c == 0xf0 && c1 < 0x90) return 0;   // overlong
  if (n == 4 && c == 0xf4 && c1 >= 0x90) return 0;  // beyond U+10FFFF
  return n;
}

std::string Resources(const core::ResourceVector& r) {
  return "cpu_mcores=" + std::to_string(r.cpu_mcores) + " mem_mib=" + std::to_string(r.mem_mib) +
         " disk_mib=" + std::to_string(r.disk_mib) +
         " net_min_kbps=" + std::to_string(r.net_min_kbps) +
         " net_max_kbps=" + std::to_string(r.net_max_kbps);
}

}  // namespace

std::string CleanLogText(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == '\n' || c == '\t' || (c >= 0x20 && c < 0x7f)) {
      out.push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    size_t n = c >= 0x80 ? Utf8Length(text, i) : 0;
    if (n == 0) {
      out.push_back('?');
      ++i;
      continue;
    }
    out.append(text.substr(i, n));
    i += n;
  }
  return out;
}

std::string ReadLogTail(const std::string& path, size_t max_bytes, int64_t* size) {
  *size = -1;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  struct stat st;
  if (fstat(fd, &st) != 0) {
    close(fd);
    return "";
  }
  off_t from = st.st_size > static_cast<off_t>(max_bytes) ? st.st_size - max_bytes : 0;
  std::string buf(static_cast<size_t>(st.st_size - from), '\0');
  ssize_t r = pread(fd, buf.data(), buf.size(), from);
  close(fd);
  if (r < 0) return "";
  buf.resize(static_cast<size_t>(r));
  if (from > 0) {
    // Start at a line: the logger may have cut the file, a reader mid-line.
    size_t nl = buf.find('\n');
    if (nl != std::string::npos && nl + 1 < buf.size()) buf.erase(0, nl + 1);
  }
  *size = st.st_size;
  return CleanLogText(buf);
}

core::Status SliverLogs::Add(const std::string& slice, const std::string& kind,
                             std::string message) {
  message = CleanLogText(message);
  if (message.size() > kMaxEventMessage) message.resize(kMaxEventMessage);
  // A cut may split a UTF-8 sequence: clean again.
  return store_->AddSliverEvent(slice, {clock_->NowMillis(), kind, CleanLogText(message), 1});
}

core::Status SliverLogs::RecordPass(const std::vector<SliverSpec>& desired,
                                    const ReconcileStats& stats,
                                    const std::map<std::string, SliverFailure>& failures,
                                    bool read_limits) {
  if (!loaded_) {
    auto t = store_->GetMeta("sliver_names");
    if (t.ok()) {
      auto j = nlohmann::json::parse(*t, nullptr, false);
      if (j.is_array()) {
        for (const auto& n : j) {
          if (n.is_string()) known_.insert(n.get<std::string>());
        }
      }
    }
    loaded_ = true;
  }
  std::set<std::string> now_known;
  live_.clear();
  std::set<std::string> booted(stats.booted.begin(), stats.booted.end());
  for (const SliverSpec& s : desired) {
    live_.push_back(s.name);
    auto f = failures.find(s.name);
    bool was = known_.count(s.name) > 0;
    if (f != failures.end()) {
      BOURSE_RETURN_IF_ERROR(Add(s.name, "error",
                                 f->second.step + ": " + f->second.message + " (attempt " +
                                     std::to_string(f->second.attempts) + " of " +
                                     std::to_string(kMaxEnforceAttempts) + ")"));
      if (was) now_known.insert(s.name);
      continue;
    }
    now_known.insert(s.name);
    if (!was) BOURSE_RETURN_IF_ERROR(Add(s.name, "started", "sliver set up: " + Resources(s.res)));
    if (booted.count(s.name)) {
      BOURSE_RETURN_IF_ERROR(
          was ? Add(s.name, "restarted", "boot script started again (the node rebooted)")
              : Add(s.name, "boot", "boot script started"));
    }
  }
  for (const auto& [name, r] : stats.disk_resizes) BOURSE_RETURN_IF_ERROR(RecordResize(name, r));
  bool gone = false;
  for (const std::string& n : known_) {
    if (now_known.count(n) || std::find(live_.begin(), live_.end(), n) != live_.end()) continue;
    BOURSE_RETURN_IF_ERROR(Add(n, "torn_down", "sliver torn down: no live rcap holds it"));
    limits_.erase(n);
    held_.erase(n);
    gone = true;
  }
  if (read_limits) {
    std::map<std::string, LimitCounters> now = enforcer_->Limits(live_);
    for (const auto& [name, c] : now) {
      auto prev = limits_.find(name);
      if (prev == limits_.end()) continue;  // the first reading is the baseline
      const LimitCounters& p = prev->second;
      if (c.mem_oom > p.mem_oom || c.mem_oom_kill > p.mem_oom_kill) {
        BOURSE_RETURN_IF_ERROR(Add(
            name, "oom",
            "memory limit reached " + std::to_string(std::max<int64_t>(0, c.mem_oom - p.mem_oom)) +
                " times, " + std::to_string(std::max<int64_t>(0, c.mem_oom_kill - p.mem_oom_kill)) +
                " processes killed by the OOM killer (" + std::to_string(c.mem_oom_kill) +
                " in all)"));
      }
      if (c.disk_full && !p.disk_full) {
        BOURSE_RETURN_IF_ERROR(Add(name, "disk_full",
                                   "disk full: " + std::to_string(c.disk_avail_bytes / 1024) +
                                       " KiB free of " +
                                       std::to_string(c.disk_size_bytes / (1024 * 1024)) +
                                       " MiB; writes fail with ENOSPC"));
      }
      if (c.net_dropped > p.net_dropped) {
        BOURSE_RETURN_IF_ERROR(Add(name, "net_dropped",
                                   "its link class dropped " +
                                       std::to_string(c.net_dropped - p.net_dropped) +
                                       " packets held back by its rate limit (" +
                                       std::to_string(c.net_dropped) + " in all)"));
      }
      if (c.cpu_throttled > p.cpu_throttled) {
        BOURSE_RETURN_IF_ERROR(
            Add(name, "cpu_throttled",
                "throttled by its CPU cap in " + std::to_string(c.cpu_throttled - p.cpu_throttled) +
                    " periods of 100 ms (" + std::to_string(c.cpu_throttled) + " in all)"));
      }
    }
    limits_ = std::move(now);
  }
  if (now_known != known_) {
    nlohmann::json names = nlohmann::json::array();
    for (const std::string& n : now_known) names.push_back(n);
    BOURSE_RETURN_IF_ERROR(store_->PutMeta("sliver_names", names.dump()));
    known_ = std::move(now_known);
  }
  if (passes_++ % 100 == 0 || gone) {
    BOURSE_RETURN_IF_ERROR(
        store_->PruneSliverEvents(live_, clock_->NowMillis() - kGoneSliverEventsMs));
  }
  return core::Status::Ok();
}

core::Status SliverLogs::RecordResize(const std::string& name, const DiskResize& r) {
  std::string sizes = std::to_string(r.from_mib) + " to " + std::to_string(r.to_mib) + " MiB";
  if (r.done) {
    held_.erase(name);
    return Add(name, "disk_resized",
               std::string(r.to_mib > r.from_mib ? "disk grown" : "disk shrunk") + " from " +
                   sizes + (r.online ? " online" : " while unmounted (no process of it ran)"));
  }
  std::string m = "disk kept at " + std::to_string(r.from_mib) + " MiB, " +
                  std::to_string(r.to_mib) + " MiB asked: " + r.why + "; tried again every pass";
  auto [it, fresh] = held_.try_emplace(name, m);
  if (!fresh && it->second == m) return core::Status::Ok();  // said already
  it->second = m;
  return Add(name, "disk_resize_held", m);
}

nlohmann::json SliverLogs::Build(size_t tail_bytes, int events) {
  std::set<std::string> names(live_.begin(), live_.end());
  auto with_events = store_->SliversWithEvents();
  if (with_events.ok()) {
    for (const auto& [n, ts] : *with_events) names.insert(n);
  }
  nlohmann::json slivers = nlohmann::json::array();
  for (const std::string& n : names) {
    if (slivers.size() >= kMaxLogReportSlivers) break;
    nlohmann::json ev = nlohmann::json::array();
    auto e = store_->SliverEvents(n, events);
    if (e.ok()) {
      for (const SliverEvent& x : *e) ev.push_back(x.ToJson());
    }
    nlohmann::json log = nullptr;
    std::string path = enforcer_->BootLogPath(n);
    if (!path.empty()) {
      int64_t size = -1;
      std::string tail = ReadLogTail(path, tail_bytes, &size);
      if (size >= 0) {
        log = {{"tail", std::move(tail)}, {"size", size}, {"max_bytes", kBootLogMaxBytes}};
      }
    }
    slivers.push_back({{"slice", n}, {"events", std::move(ev)}, {"log", std::move(log)}});
  }
  return {{"slivers", std::move(slivers)}};
}

nlohmann::json SliverLogs::ReportBody() {
  size_t tail = kLogTailBytes;
  int events = kReportedEvents;
  nlohmann::json body = Build(tail, events);
  // Too big for the broker (many slivers): shorter tails, then fewer events.
  while (body.dump().size() > kMaxLogReportBytes && (tail > 64 || events > 1)) {
    if (tail > 64) {
      tail /= 2;
    } else {
      events = std::max(1, events / 2);
    }
    body = Build(tail, events);
  }
  return body;
}

}  // namespace bourse::nodeguard
