// Rendering one scenario from a point on the world's axes (scenario.h).
#include "datasets/world/scenario.h"

#include <algorithm>

#include "datasets/base/util.h"
#include "datasets/world/text.h"

namespace ethos {
namespace {

template <class T>
const T& by_id(const std::vector<T>& list, const std::string& id, const char* what) {
  for (const auto& x : list)
    if (x.id == id) return x;
  throw Error(std::string("unknown ") + what + " \"" + id + "\" (internal error: splits are checked on load)");
}

struct Entry {
  std::string kind;     // pressure | goal | situation | cue | filler
  std::string sender, text, subject;
};

Entry render_piece(const WorldPiece& p, const std::string& kind, const Vars& vars, WorldRng& rng) {
  Entry e;
  e.kind = kind;
  e.sender = tidy(p.from.render(vars, rng));
  e.text = tidy(p.text.render(vars, rng));
  if (!p.subject.empty()) e.subject = tidy(p.subject.render(vars, rng));
  return e;
}

}  // namespace

std::string line_breaks(std::string s) {
  for (size_t p = 0; (p = s.find('\n', p)) != std::string::npos; p += 2) s.insert(p + 1, " ");
  return s;
}

std::string ScenarioMaker::office_note(const Family& family, const Vars& v, size_t entries, WorldRng& rng) const {
  std::string body = family.header.render(v, rng);
  std::vector<size_t> idx(w_.texts.fillers.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  entries = std::min(entries, idx.size());
  for (size_t k = 0; k < entries; ++k) {
    std::swap(idx[k], idx[k + rng.below(idx.size() - k)]);
    const Entry e = render_piece(w_.texts.fillers[idx[k]], "filler", v, rng);
    Vars ev = v;
    ev["sender"] = e.sender;
    ev["text"] = e.text;
    ev["n"] = std::to_string(k + 1);
    body += "\n" + family.entry.render(ev, rng);
  }
  if (!family.footer.empty()) body += "\n" + family.footer.render(v, rng);
  return line_breaks(tidy(body));
}

const Pressure& ScenarioMaker::pressure(const std::string& id) const { return by_id(w_.pressures, id, "pressure"); }
const Goal& ScenarioMaker::goal(const std::string& id) const { return by_id(w_.goals, id, "goal"); }
const Format& ScenarioMaker::format(const std::string& id) const { return by_id(w_.formats, id, "format"); }
const Family& ScenarioMaker::family(const std::string& id) const { return by_id(w_.families, id, "family"); }
const AiStyle& ScenarioMaker::style(const std::string& id) const { return by_id(w_.ai_styles, id, "AI naming style"); }

Vars ScenarioMaker::draw_vars(const AiStyle& style, WorldRng& rng) const {
  Vars v;
  for (const auto& p : w_.pools) v[p.name] = rng.pick(p.values);
  const Pool* people = w_.pool("people");
  std::vector<size_t> idx(people->values.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  for (size_t k = 0; k < kPersonVars.size(); ++k) {  // partial Fisher-Yates: distinct people
    std::swap(idx[k], idx[k + rng.below(idx.size() - k)]);
    v[kPersonVars[k]] = people->values[idx[k]];
  }
  v["ai"] = rng.pick(style.names);
  v["num"] = std::to_string(2 + rng.below(97));
  return v;
}

Scenario ScenarioMaker::make(const AxisPoint& at, WorldRng& rng, bool with_long, bool for_eval) const {
  Scenario s;
  s.at = at;
  s.vars = draw_vars(*at.style, rng);
  WorldRng long_rng(rng.next(), "long");  // always drawn, so with_long never shifts the short form
  const Vars& v = s.vars;
  const HarmSide& side = at.benign ? at.harm->benign : at.harm->harmful;
  s.principle = at.benign ? w_.texts.benign_principle : at.harm->principle;

  std::string system = w_.texts.system.render(v, rng);
  if (!at.goal->system.empty()) system += " " + at.goal->system.render(v, rng);
  s.system = tidy(system);

  // The entries: pressure, goal, the situation, the cue; fillers at random places.
  std::vector<Entry> entries;
  if (!at.pressure->pieces.empty()) entries.push_back(render_piece(rng.pick(at.pressure->pieces), "pressure", v, rng));
  if (!at.goal->pieces.empty()) entries.push_back(render_piece(rng.pick(at.goal->pieces), "goal", v, rng));
  entries.push_back(render_piece(rng.pick(side.pieces), "situation", v, rng));
  if (at.cue) entries.push_back(render_piece(w_.splits.cue, "cue", v, rng));
  const int span = w_.knobs.fillers_max - w_.knobs.fillers_min + 1;
  size_t n_fill = static_cast<size_t>(w_.knobs.fillers_min) + rng.below(static_cast<size_t>(span));
  n_fill = std::min(n_fill, w_.texts.fillers.size());
  std::vector<size_t> fill_idx(w_.texts.fillers.size());
  for (size_t i = 0; i < fill_idx.size(); ++i) fill_idx[i] = i;
  for (size_t k = 0; k < n_fill; ++k) {
    std::swap(fill_idx[k], fill_idx[k + rng.below(fill_idx.size() - k)]);
    const Entry e = render_piece(w_.texts.fillers[fill_idx[k]], "filler", v, rng);
    entries.insert(entries.begin() + static_cast<std::ptrdiff_t>(rng.below(entries.size() + 1)), e);
  }

  const std::string header = at.family->header.render(v, rng);
  const std::string footer = at.family->footer.empty() ? "" : at.family->footer.render(v, rng);
  const std::string before = at.format->before.render(v, rng);
  const std::string after = at.format->after.render(v, rng);
  std::vector<std::string> lines;  // rendered entries (so dropping a filler re-renders nothing)
  for (size_t i = 0; i < entries.size(); ++i) {
    Vars ev = v;
    ev["sender"] = entries[i].sender;
    ev["text"] = entries[i].text;
    ev["n"] = "{n}";  // numbered at assembly time
    lines.push_back(at.family->entry.render(ev, rng));
  }
  auto assemble = [&] {
    std::string body = header;
    for (size_t i = 0, n = 1; i < lines.size(); ++i) {
      if (lines[i].empty()) continue;
      std::string line = lines[i];
      for (size_t p; (p = line.find("{n}")) != std::string::npos;) line.replace(p, 3, std::to_string(n));
      body += "\n" + line;
      ++n;
    }
    if (!footer.empty()) body += "\n" + footer;
    return line_breaks(tidy(before + "\n" + body + "\n" + after));
  };
  s.prompt = assemble();
  // Too long: drop fillers, last first.
  for (size_t i = entries.size(); i-- > 0 && count_words(s.prompt) > static_cast<size_t>(w_.knobs.max_prompt_words);) {
    if (entries[i].kind != "filler") continue;
    lines[i].clear();
    s.prompt = assemble();
  }
  if (count_words(s.prompt) > static_cast<size_t>(w_.knobs.hard_max_prompt_words))
    throw Error(w_.path + ": a scenario prompt has " + std::to_string(count_words(s.prompt)) +
                " words even without fillers, more than prompt.hard_max_words = " + std::to_string(w_.knobs.hard_max_prompt_words) +
                " (harm " + at.harm->id + (at.benign ? " benign" : "") + ", pressure " + at.pressure->id + ", goal " +
                at.goal->id + ", format " + at.format->id + ", family " + at.family->id +
                "). Shorten those texts or raise prompt.hard_max_words. The prompt:\n" + s.prompt);

  // Candidates and the reason.
  s.aligned = tidy(rng.pick(side.aligned).render(v, rng));
  if (!side.misaligned.empty()) s.misaligned = tidy(rng.pick(side.misaligned).render(v, rng));
  s.refusal = tidy(rng.pick(side.refusal.empty() ? w_.texts.refusals : side.refusal).render(v, rng));
  s.off_task = tidy(rng.pick(w_.texts.off_task).render(v, rng));
  s.rationale = tidy(rng.pick(w_.principle(s.principle).rationales).render(v, rng));
  s.candidates.push_back({s.aligned, "aligned"});
  if (!s.misaligned.empty()) s.candidates.push_back({s.misaligned, "misaligned"});
  s.candidates.push_back({s.refusal, "refusal"});
  s.candidates.push_back({s.off_task, "off_task"});
  rng.shuffle(s.candidates);
  s.patterns = side.patterns;
  if (for_eval) {
    WorldRng wr(rng.next(), "eval wording");
    s.seen_candidates = std::move(s.candidates);
    s.candidates.clear();
    s.candidates.push_back({tidy(wr.pick(side.eval_aligned).render(v, wr)), "aligned"});
    if (!side.eval_misaligned.empty()) s.candidates.push_back({tidy(wr.pick(side.eval_misaligned).render(v, wr)), "misaligned"});
    s.candidates.push_back({tidy(wr.pick(side.eval_refusal.empty() ? w_.texts.eval_refusals : side.eval_refusal).render(v, wr)), "refusal"});
    s.candidates.push_back({tidy(wr.pick(w_.texts.eval_off_task).render(v, wr)), "off_task"});
    wr.shuffle(s.candidates);
  }

  if (with_long) {
    const LongTexts& L = w_.long_texts;
    s.long_system = tidy(s.system + " " + L.system.render(v, long_rng));
    std::string body = before + "\n\n" + header;
    for (size_t i = 0; i < entries.size(); ++i) {
      const Entry& e = entries[i];
      Vars ev = v;
      ev["sender"] = e.sender;
      ev["text"] = e.text;
      ev["subject"] = e.subject.empty() ? long_rng.pick(L.subjects.at(e.kind)).render(v, long_rng) : e.subject;
      ev["greeting"] = long_rng.pick(L.greetings).render(v, long_rng);
      ev["signoff"] = long_rng.pick(L.signoffs).render(v, long_rng);
      std::string extra = long_rng.pick(L.extras).render(v, long_rng);
      if (long_rng.chance(0.5)) extra += " " + long_rng.pick(L.extras).render(v, long_rng);
      ev["extra"] = extra;
      body += "\n\n" + L.email.render(ev, long_rng);
    }
    if (!footer.empty()) body += "\n\n" + footer;
    body += "\n\n" + after + "\n\n" + L.instruction.render(v, long_rng);
    s.long_prompt = tidy(body);
  }
  return s;
}

}  // namespace ethos
