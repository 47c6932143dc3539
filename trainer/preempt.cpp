#include "trainer/preempt.h"

#include <signal.h>

#include <algorithm>
#include <cctype>

namespace ethos {
namespace {

volatile sig_atomic_t g_stop = 0;

void on_stop_signal(int sig) { g_stop = sig; }

const std::pair<const char*, int> kSignals[] = {{"USR2", SIGUSR2}, {"USR1", SIGUSR1}, {"HUP", SIGHUP},
                                                {"INT", SIGINT},   {"URG", SIGURG},   {"TERM", SIGTERM}};

}  // namespace

int parse_stop_signal(const std::string& name, const std::string& where) {
  std::string n = name;
  std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return std::toupper(c); });
  if (n.rfind("SIG", 0) == 0) n = n.substr(3);
  if (n == "NONE") return 0;
  for (const auto& [s, v] : kSignals)
    if (n == s) return v;
  throw Error(where + ": unknown signal \"" + name + "\"; choose USR2 (the default), USR1, HUP, INT, URG, TERM or none");
}

std::string signal_name(int sig) {
  for (const auto& [s, v] : kSignals)
    if (v == sig) return std::string("SIG") + s;
  return "signal " + std::to_string(sig);
}

void install_stop_handlers(int warning_signal) {
  struct sigaction term = {};
  term.sa_handler = on_stop_signal;
  sigemptyset(&term.sa_mask);
  term.sa_flags = SA_RESTART | SA_RESETHAND;  // a second SIGTERM takes the default action: exit
  sigaction(SIGTERM, &term, nullptr);
  if (warning_signal != 0 && warning_signal != SIGTERM) {
    struct sigaction warn = {};
    warn.sa_handler = on_stop_signal;
    sigemptyset(&warn.sa_mask);
    warn.sa_flags = SA_RESTART;
    sigaction(warning_signal, &warn, nullptr);
  }
}

int stop_requested() { return g_stop; }
void clear_stop_request() { g_stop = 0; }

}  // namespace ethos
