#include "trainer/checkpoint/run_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>

#include "datasets/base/util.h"

namespace fs = std::filesystem;

namespace ethos {
namespace {

std::string host_name() {
  char buf[256] = {0};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "unknown-host";
  return buf;
}

std::string lock_path(const std::string& run_dir) { return (fs::path(run_dir) / ".lock").string(); }

std::string read_fd(int fd) {
  std::string text;
  char buf[4096];
  for (off_t at = 0;;) {
    const ssize_t n = ::pread(fd, buf, sizeof buf, at);
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
    at += n;
    if (text.size() > 65536) break;  // a holder record is a few hundred bytes
  }
  return text;
}

std::string describe_holder(const nlohmann::json& h) {
  if (!h.is_object() || h.empty()) return "a process that has not yet written its name into the lock";
  std::string s = "pid " + std::to_string(h.value("pid", int64_t{0})) + " on host " + h.value("host", std::string("?"));
  if (h.contains("slurm_job_id")) {
    s += ", Slurm job " + h["slurm_job_id"].get<std::string>();
    if (h.contains("slurm_array_job_id"))
      s += " (array task " + h["slurm_array_job_id"].get<std::string>() + "_" +
           h.value("slurm_array_task_id", std::string("?")) + ")";
  }
  if (h.contains("started")) s += ", started " + h["started"].get<std::string>();
  return s;
}

}  // namespace

std::string utc_timestamp() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

nlohmann::json process_identity() {
  nlohmann::json j = {{"host", host_name()}, {"pid", static_cast<int64_t>(::getpid())}, {"started", utc_timestamp()}};
  const std::pair<const char*, const char*> slurm[] = {
      {"SLURM_JOB_ID", "slurm_job_id"},           {"SLURM_ARRAY_JOB_ID", "slurm_array_job_id"},
      {"SLURM_ARRAY_TASK_ID", "slurm_array_task_id"}, {"SLURM_JOB_NODELIST", "slurm_nodelist"},
      {"SLURM_RESTART_COUNT", "slurm_restart_count"}, {"SLURM_STEP_ID", "slurm_step_id"}};
  for (const auto& [var, key] : slurm)
    if (const char* v = std::getenv(var)) j[key] = v;
  if (j.contains("slurm_job_id") && !j.contains("slurm_restart_count")) j["slurm_restart_count"] = "0";
  return j;
}

RunLock::RunLock(const std::string& run_dir) {
  const std::string path = lock_path(run_dir);
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw Error("cannot open the run lock " + path + ": " + std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    const std::string text = read_fd(fd_);
    ::close(fd_);
    fd_ = -1;
    if (err != EWOULDBLOCK)
      throw Error("cannot lock the run directory " + run_dir + " (" + path + "): " + std::strerror(err));
    const auto holder = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    throw Error("another ethos process is writing " + run_dir + ": " + describe_holder(holder.is_discarded() ? nlohmann::json() : holder) +
                ". Two writers would interleave its logs and checkpoints. Wait for it to finish, stop it "
                "(kill the pid, or scancel the job), or give this run another out_dir.");
  }
  const std::string me = process_identity().dump() + "\n";
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, me.data(), me.size(), 0) != static_cast<ssize_t>(me.size()))
    throw Error("cannot write the run lock " + path + ": " + std::strerror(errno));
}

RunLock::~RunLock() {
  if (fd_ < 0) return;
  if (::ftruncate(fd_, 0) != 0) {  // nobody holds it: no name left in it
  }
  ::flock(fd_, LOCK_UN);
  ::close(fd_);
}

nlohmann::json run_lock_holder(const std::string& run_dir) {
  const int fd = ::open(lock_path(run_dir).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return nullptr;
  nlohmann::json holder = nullptr;
  if (::flock(fd, LOCK_SH | LOCK_NB) == 0) {
    ::flock(fd, LOCK_UN);
  } else {
    holder = nlohmann::json::parse(read_fd(fd), nullptr, /*allow_exceptions=*/false);
    if (holder.is_discarded() || !holder.is_object()) holder = nlohmann::json::object();
  }
  ::close(fd);
  return holder;
}

void write_run_status(const std::string& run_dir, const std::string& state, int64_t step, const nlohmann::json& extra) {
  nlohmann::json j = {{"state", state}, {"step", step}, {"time", utc_timestamp()}, {"by", process_identity()}};
  j.update(extra);
  write_file_atomic((fs::path(run_dir) / "status.json").string(), j.dump(1) + "\n");
}

std::optional<nlohmann::json> read_run_status(const std::string& run_dir) {
  const std::string path = (fs::path(run_dir) / "status.json").string();
  if (!fs::exists(path)) return std::nullopt;
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  return j;
}

void record_launch(const std::string& run_dir) {
  const std::string path = (fs::path(run_dir) / "launches.jsonl").string();
  std::ofstream out(path, std::ios::app);
  if (!out) throw Error("cannot append to " + path);
  out << process_identity().dump() << "\n" << std::flush;
}

}  // namespace ethos
