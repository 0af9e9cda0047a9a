-- Least privilege inside an organization.

-- A group ceiling outlives its group: when the group is deleted (SCIM DELETE), the ceiling row
-- stays, names a group nobody is a member of, and so allows no one until an admin changes it.
-- The group's name is kept so the portal can say which group went.
alter table scope_ceilings drop constraint scope_ceilings_group_fkey;
alter table scope_ceilings add column group_name text not null default '';
update scope_ceilings c set group_name = g.display_name from groups g where g.org_id = c.org_id and g.id = c.group_id;

-- Four eyes: who registered an agent and who last set a scope's risk may not approve it when high.
alter table agents add column registered_by_admin_id uuid;
update agents a set registered_by_admin_id = ad.id
  from admins ad join people p on p.org_id = ad.org_id and p.id = ad.person_id
 where ad.org_id = a.org_id and a.created_by = p.email;
alter table scopes add column risk_set_by_admin_id uuid;

-- API keys carry scopes chosen at creation, and may expire. Keys from before scopes existed keep
-- what they could do (every scope, made explicit); the portal asks owners to narrow them.
alter table api_keys add column scopes text[] not null default '{introspect,audit:write}';
alter table api_keys add column expires_at timestamptz;
update api_keys set scopes = '{introspect,audit:write,audit:read,agents:read,agents:write,approvals:decide,directories:write,sso:write,streams:write,retention:write,admins:write}';
