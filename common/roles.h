// The processes of the maild family, and what each one is by default.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace maild {

// The long-lived roles maild starts, in start order. Parent is maild itself.
enum class Role : uint8_t {
	Parent,
	Control,
	Lookup,
	Queue,
	Deliver,
	Smtpd,
	Mta,
	Imapd,
	Pop3d,
};
inline constexpr std::size_t kRoleCount = 9;

// Which directory a role chroots into (all are config paths).
enum class RootDir : uint8_t {
	None,      // the parent: never chroots
	Empty,     // network roles and control: an empty, root-owned directory
	Spool,     // queue
	Database,  // lookup: the directory holding the database
	MailStore, // deliver
};

struct RoleInfo {
	Role role;
	std::string_view name;         // as in logs, config `user` lines and libexec
	std::string_view default_user; // an unprivileged system user
	RootDir root;
};

inline constexpr std::array<RoleInfo, kRoleCount> kRoles{{
    {Role::Parent, "maild", "root", RootDir::None},
    {Role::Control, "control", "_maild", RootDir::Empty},
    {Role::Lookup, "lookup", "_maildl", RootDir::Database},
    {Role::Queue, "queue", "_maildq", RootDir::Spool},
    {Role::Deliver, "deliver", "_maildv", RootDir::MailStore},
    {Role::Smtpd, "smtpd", "_maild", RootDir::Empty},
    {Role::Mta, "mta", "_maild", RootDir::Empty},
    {Role::Imapd, "imapd", "_maild", RootDir::Empty},
    {Role::Pop3d, "pop3d", "_maild", RootDir::Empty},
}};

constexpr const RoleInfo &role_info(Role r) { return kRoles[static_cast<std::size_t>(r)]; }
constexpr std::string_view to_string(Role r) { return role_info(r).name; }

constexpr std::optional<Role> role_from_name(std::string_view name)
{
	for (const auto &info : kRoles)
		if (info.name == name)
			return info.role;
	return std::nullopt;
}

} // namespace maild
