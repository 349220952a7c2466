#include "links.h"

#include <algorithm>
#include <map>

namespace lesson_check {

namespace {

// Decodes one UTF-8 character at s[i]; advances i. Malformed bytes decode as themselves.
char32_t next_char(const std::string& s, size_t& i) {
  unsigned char c = s[i];
  int extra = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0;
  if (extra > 0 && i + extra >= s.size()) extra = 0;  // truncated: take the byte alone
  char32_t cp = extra == 0 ? c : extra == 1 ? (c & 0x1F) : extra == 2 ? (c & 0x0F) : (c & 0x07);
  for (int k = 1; k <= extra; k++) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  i += 1 + extra;
  return cp;
}

bool is_unicode_punctuation(char32_t cp) {
  return (cp >= 0x00A0 && cp <= 0x00BF) || cp == 0x00D7 || cp == 0x00F7 || (cp >= 0x2000 && cp <= 0x2BFF) ||
         (cp >= 0x3000 && cp <= 0x303F) || (cp >= 0xFE30 && cp <= 0xFE4F) || (cp >= 0xFF01 && cp <= 0xFF0F) ||
         (cp >= 0xFF1A && cp <= 0xFF20) || (cp >= 0xFF3B && cp <= 0xFF40) || (cp >= 0xFF5B && cp <= 0xFF65);
}

bool is_web(const std::string& target) {
  return target.find("://") != std::string::npos || starts_with(target, "mailto:");
}

bool is_path_char(char c) { return std::isalnum((unsigned char)c) || c == '_' || c == '-' || c == '.' || c == '/'; }

// Whether a code span is a repository path worth checking.
bool is_code_path(const std::string& span, const std::set<std::string>& root_dirs) {
  std::string path = span.substr(0, span.find('#'));
  if (path.find('/') == std::string::npos || path.find("..") != std::string::npos) return false;
  if (!std::all_of(path.begin(), path.end(), is_path_char)) return false;
  if (path.find("NN") != std::string::npos) return false;  // lessons/NN-slug.md, a placeholder
  std::string first = path.substr(0, path.find('/'));
  if (first == "build" || first == "runs") return false;
  return root_dirs.count(first) > 0;
}

}  // namespace

std::string heading_slug(const std::string& heading) {
  std::string slug;
  for (size_t i = 0; i < heading.size();) {
    size_t at = i;
    char32_t cp = next_char(heading, i);
    if (cp < 0x80) {
      char c = static_cast<char>(cp);
      if (std::isalnum((unsigned char)c)) slug += static_cast<char>(std::tolower((unsigned char)c));
      else if (c == ' ') slug += '-';
      else if (c == '-' || c == '_') slug += c;
    } else if (!is_unicode_punctuation(cp)) {
      slug += heading.substr(at, i - at);
    }
  }
  return slug;
}

std::set<std::string> heading_anchors(const Lines& md) {
  std::set<std::string> anchors;
  std::map<std::string, int> seen;
  std::vector<bool> fenced = fenced_lines(md);
  for (size_t i = 0; i < md.size(); i++) {
    if (fenced[i] || !starts_with(md[i], "#")) continue;
    size_t hashes = md[i].find_first_not_of('#');
    if (hashes == std::string::npos || hashes > 6 || md[i][hashes] != ' ') continue;
    std::string text = trim(md[i].substr(hashes));
    while (!text.empty() && text.back() == '#') text.pop_back();  // closing hashes
    std::string slug = heading_slug(trim(text));
    int n = seen[slug]++;
    anchors.insert(n == 0 ? slug : slug + "-" + std::to_string(n));
  }
  return anchors;
}

std::vector<LinkRef> find_links(const Lines& md, const std::set<std::string>& root_dirs) {
  std::vector<LinkRef> links;
  std::vector<bool> fenced = fenced_lines(md);
  for (int i = 0; i < static_cast<int>(md.size()); i++) {
    if (fenced[i]) continue;
    const std::string& line = md[i];
    // Code spans: checked as paths when they are, then blanked so links inside code are not links.
    for (size_t at = line.find('`'); at != std::string::npos;) {
      size_t close = line.find('`', at + 1);
      if (close == std::string::npos) break;
      std::string span = line.substr(at + 1, close - at - 1);
      if (is_code_path(span, root_dirs)) links.push_back(LinkRef{i, span, true});
      at = line.find('`', close + 1);
    }
    std::string prose = without_code_spans(line);
    // Reference definitions: `[name]: target` at the start of a line.
    std::string t = trim(prose);
    if (starts_with(t, "[") && t.find("]: ") != std::string::npos && t.find("]: ") < t.find(' ')) {
      std::string target = trim(t.substr(t.find("]: ") + 3));
      target = target.substr(0, target.find(' '));
      links.push_back(LinkRef{i, target, false});
      continue;
    }
    for (size_t at = prose.find("]("); at != std::string::npos; at = prose.find("](", at + 2)) {
      size_t close = prose.find(')', at + 2);
      if (close == std::string::npos) break;
      std::string target = trim(prose.substr(at + 2, close - at - 2));
      target = target.substr(0, target.find(' '));  // drop a title: [x](path "title")
      if (starts_with(target, "<") && ends_with(target, ">")) target = target.substr(1, target.size() - 2);
      if (!target.empty()) links.push_back(LinkRef{i, target, false});
    }
  }
  return links;
}

Lines check_links(const fs::path& root, const std::string& rel, const Lines& md,
                  const std::function<std::set<std::string>(const std::string&)>& anchors_of) {
  Lines errors;
  std::set<std::string> root_dirs;
  for (const auto& entry : fs::directory_iterator(root)) {
    if (entry.is_directory()) root_dirs.insert(entry.path().filename().string());
  }
  fs::path dir = fs::path(rel).parent_path();
  for (const LinkRef& link : find_links(md, root_dirs)) {
    if (is_web(link.target)) continue;
    std::string where = rel + ":" + std::to_string(link.line + 1) + ": ";
    size_t hash = link.target.find('#');
    std::string path = link.target.substr(0, hash);
    std::string fragment = hash == std::string::npos ? "" : link.target.substr(hash + 1);
    if (link.code_path) {
      if (!fs::exists(root / path)) {
        errors.push_back(where + "path `" + link.target + "` names no file or folder of the project");
      }
      continue;  // a code path's #name is an anchor of a source file, checked by the quotes
    }
    std::string target_rel = path.empty() ? rel : (dir / path).lexically_normal().generic_string();
    if (starts_with(target_rel, "../") || target_rel == "..") {
      errors.push_back(where + "link " + link.target + " leaves the project");
      continue;
    }
    if (!path.empty() && !fs::exists(root / target_rel)) {
      errors.push_back(where + "link " + link.target + " leads nowhere (no " + target_rel + ")");
      continue;
    }
    if (!fragment.empty() && fs::path(target_rel).extension() == ".md") {
      std::set<std::string> anchors = anchors_of(target_rel);
      if (!anchors.count(fragment)) {
        errors.push_back(where + "link " + link.target + ": " + target_rel + " has no heading with the anchor #" +
                         fragment);
      }
    }
  }
  return errors;
}

}  // namespace lesson_check
