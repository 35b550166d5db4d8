#!/usr/bin/python3
# Fidelity test of the AWS double: the real AWS SDK for Python (Debian python3-boto3) calls
# every EC2, ELB, ELBv2, STS and IMDSv2 operation the aws module uses against tests/doubles/aws.py.
# Owns no state outside the double it starts; talks to 127.0.0.1 only.
"""Runs boto3 against tests/doubles/aws.py. boto3's own parsers must accept every answer,
its retry logic must recognise the throttling errors. Prints 'N passed, N failed' and exits
non-zero on any failure."""

import datetime
import json
import os
import re
import subprocess
import sys
import traceback
import types
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
DOUBLE = os.path.join(HERE, "aws.py")
SEED = os.path.join(HERE, "fixtures", "aws_seed.json")
AKID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
REGION = "us-east-1"
VPC = "vpc-0a1b2c3d4e5f60718"
PUB = ["subnet-0a1b2c3d4e5f60001", "subnet-0a1b2c3d4e5f60002", "subnet-0a1b2c3d4e5f60003"]
PRIV = ["subnet-0a1b2c3d4e5f60011", "subnet-0a1b2c3d4e5f60012", "subnet-0a1b2c3d4e5f60013"]
I1, I2, I3, I4 = ("i-0a1b2c3d4e5f60001", "i-0a1b2c3d4e5f60002", "i-0a1b2c3d4e5f60003",
                  "i-0a1b2c3d4e5f60004")
NODE_SG = "sg-0a1b2c3d4e5f60301"
MAIN_RTB = "rtb-0a1b2c3d4e5f60100"
CLUSTER_RTB = "rtb-0a1b2c3d4e5f60200"
CLUSTER_TAG = "kubernetes.io/cluster/kubernetes"
WEB_TOKEN = "eyJhbGciOiJSUzI1NiJ9.double-web-identity-token.c2lnbmF0dXJl"

# Loopback only: no proxy may intercept, and no real credentials may leak in.
for _k in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy",
           "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
           "AWS_DEFAULT_PROFILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE",
           "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI"):
    os.environ.pop(_k, None)
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

import boto3  # noqa: E402
import botocore.auth  # noqa: E402
import botocore.session  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))

# Every operation the aws module makes (reference section 1); each must succeed through boto3.
REQUIRED = {
    "ec2": ["DescribeInstances", "DescribeVpcs", "DescribeSubnets", "DescribeRouteTables",
            "DescribeAvailabilityZones", "DescribeSecurityGroups", "CreateSecurityGroup",
            "DeleteSecurityGroup", "AuthorizeSecurityGroupIngress", "RevokeSecurityGroupIngress",
            "CreateTags", "DeleteTags", "CreateRoute", "DeleteRoute", "ReplaceRoute",
            "ModifyInstanceAttribute"],
    "elb": ["CreateLoadBalancer", "DescribeLoadBalancers", "DeleteLoadBalancer",
            "CreateLoadBalancerListeners", "DeleteLoadBalancerListeners",
            "RegisterInstancesWithLoadBalancer", "DeregisterInstancesFromLoadBalancer",
            "ConfigureHealthCheck", "DescribeLoadBalancerAttributes",
            "ModifyLoadBalancerAttributes", "ApplySecurityGroupsToLoadBalancer",
            "AttachLoadBalancerToSubnets", "DetachLoadBalancerFromSubnets", "AddTags",
            "RemoveTags", "DescribeTags", "CreateLoadBalancerPolicy",
            "DescribeLoadBalancerPolicies", "SetLoadBalancerPoliciesForBackendServer",
            "SetLoadBalancerPoliciesOfListener"],
    "elbv2": ["CreateLoadBalancer", "DescribeLoadBalancers", "DeleteLoadBalancer",
              "CreateTargetGroup", "DescribeTargetGroups", "ModifyTargetGroup",
              "DeleteTargetGroup", "RegisterTargets", "DeregisterTargets",
              "DescribeTargetHealth", "CreateListener", "DescribeListeners", "ModifyListener",
              "DeleteListener", "DescribeLoadBalancerAttributes",
              "ModifyLoadBalancerAttributes", "DescribeTargetGroupAttributes",
              "ModifyTargetGroupAttributes", "AddTags", "RemoveTags", "DescribeTags",
              "SetSecurityGroups"],
    "sts": ["AssumeRole", "AssumeRoleWithWebIdentity", "GetCallerIdentity"],
}


class Fidelity:
    def __init__(self):
        self.passed = 0
        self.failed = []
        self.proc = None
        self.port = None
        self.url = None
        self.succeeded = set()

    # -- plumbing
    def check(self, cond, what, detail=""):
        if cond:
            self.passed += 1
        else:
            self.failed.append(what)
            print("FAIL: %s %s" % (what, detail), flush=True)
        return cond

    def eq(self, got, want, what):
        return self.check(got == want, what, "got %r, want %r" % (got, want))

    def expect_error(self, fn, code, what, status=None, **kw):
        try:
            fn(**kw)
        except ClientError as e:
            got = e.response.get("Error", {}).get("Code")
            st = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            ok = got == code and (status is None or st == status)
            self.check(ok, what, "got %s/%s, want %s/%s" % (got, st, code, status))
            return e
        self.check(False, what, "no error, want %s" % code)
        return None

    def start(self):
        self.proc = subprocess.Popen(["/usr/bin/python3", DOUBLE, "--port", "0", "--seed", SEED],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        m = re.match(r"^PORT (\d+)$", line.strip())
        if not m:
            err = self.proc.stderr.read() if self.proc.poll() is not None else ""
            raise SystemExit("aws double did not print its port: %r %s" % (line, err))
        self.port = int(m.group(1))
        self.url = "http://127.0.0.1:%d" % self.port

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def hook(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        r = urllib.request.Request(self.url + path, data=data, method=method,
                                   headers={"Content-Type": "application/json"})
        with OPENER.open(r, timeout=60) as resp:
            return json.loads(resp.read().decode())

    def calls(self, service=None, action=None):
        q = []
        if service:
            q.append("service=" + service)
        if action:
            q.append("action=" + action)
        return self.hook("GET", "/_double/calls" + ("?" + "&".join(q) if q else ""))["calls"]

    def client(self, name, akid=AKID, secret=SECRET, token=None, attempts=3):
        cfg = Config(retries={"mode": "standard", "total_max_attempts": attempts},
                     connect_timeout=30, read_timeout=120, proxies={})
        c = boto3.client(name, endpoint_url=self.url, region_name=REGION,
                         aws_access_key_id=akid, aws_secret_access_key=secret,
                         aws_session_token=token, config=cfg)

        def seen(http_response=None, model=None, **_kw):
            if http_response is not None and http_response.status_code == 200:
                self.succeeded.add((name, model.name))

        c.meta.events.register("after-call", seen)
        return c

    # -- EC2
    def ec2_describe(self):
        ec2 = self.ec2
        r = ec2.describe_instances()
        insts = {i["InstanceId"]: i for res in r["Reservations"] for i in res["Instances"]}
        self.eq(sorted(insts), [I1, I2, I3, I4], "describe_instances returns the seed")
        i1 = insts.get(I1, {})
        self.eq(i1.get("PrivateIpAddress"), "10.0.128.10", "instance PrivateIpAddress")
        self.eq(i1.get("PrivateDnsName"), "ip-10-0-128-10.ec2.internal", "PrivateDnsName")
        self.eq(i1.get("Placement", {}).get("AvailabilityZone"), "us-east-1a", "Placement.AZ")
        self.eq(i1.get("State"), {"Code": 16, "Name": "running"}, "State running")
        self.eq(i1.get("InstanceType"), "m5.large", "InstanceType")
        self.eq(i1.get("VpcId"), VPC, "VpcId")
        self.eq([g["GroupId"] for g in i1.get("SecurityGroups", [])], [NODE_SG],
                "instance SecurityGroups")
        tags = {t["Key"]: t["Value"] for t in i1.get("Tags", [])}
        self.eq(tags.get(CLUSTER_TAG), "owned", "instance cluster tag")
        enis = i1.get("NetworkInterfaces", [])
        self.eq([e["Attachment"]["DeviceIndex"] for e in enis], [0, 1], "ENI device indexes")
        self.eq([e["Status"] for e in enis], ["in-use", "in-use"], "ENI status")
        if enis:
            self.eq([a["PrivateIpAddress"] for a in enis[0]["PrivateIpAddresses"]],
                    ["10.0.128.10", "10.0.128.11"], "ENI private IPs")
            self.eq([a["Ipv6Address"] for a in enis[0]["Ipv6Addresses"]],
                    ["2600:1f18:1234:5600::10"], "ENI IPv6")
        i3 = insts.get(I3, {})
        self.eq(i3.get("PublicIpAddress"), "54.210.0.30", "public ipAddress")
        self.eq(i3.get("PublicDnsName"), "ec2-54-210-0-30.compute-1.amazonaws.com",
                "public dnsName")
        i4 = insts.get(I4, {})
        self.eq(i4.get("State", {}).get("Name"), "stopped", "stopped instance")
        self.check("PublicIpAddress" not in i4, "stopped instance has no public IP")

        r = ec2.describe_instances(InstanceIds=[I2])
        self.eq([i["InstanceId"] for res in r["Reservations"] for i in res["Instances"]], [I2],
                "describe_instances by InstanceId")
        r = ec2.describe_instances(Filters=[
            {"Name": "private-dns-name", "Values": ["ip-10-0-144-20.ec2.internal"]},
            {"Name": "instance-state-name",
             "Values": ["pending", "running", "shutting-down", "stopping", "stopped"]}])
        self.eq([i["InstanceId"] for res in r["Reservations"] for i in res["Instances"]], [I2],
                "filter private-dns-name + instance-state-name")
        r = ec2.describe_instances(Filters=[{"Name": "instance-state-name",
                                             "Values": ["stopped"]}])
        self.eq([i["InstanceId"] for res in r["Reservations"] for i in res["Instances"]], [I4],
                "filter instance-state-name=stopped")
        r = ec2.describe_instances(Filters=[{"Name": "tag:" + CLUSTER_TAG, "Values": ["owned"]},
                                            {"Name": "vpc-id", "Values": [VPC]}])
        self.eq(len([1 for res in r["Reservations"] for _ in res["Instances"]]), 4,
                "filter tag: + vpc-id")
        r = ec2.describe_instances(Filters=[{"Name": "tag:Name", "Values": ["node-?"]}])
        self.eq(len([1 for res in r["Reservations"] for _ in res["Instances"]]), 3,
                "filter with wildcard")
        self.expect_error(ec2.describe_instances, "InvalidInstanceID.NotFound",
                          "missing instance -> InvalidInstanceID.NotFound", 400,
                          InstanceIds=["i-0123456789abcdef0"])
        self.expect_error(ec2.describe_instances, "InvalidInstanceID.Malformed",
                          "bad id -> InvalidInstanceID.Malformed", 400, InstanceIds=["i-zz"])
        self.expect_error(ec2.describe_instances, "InvalidParameterValue",
                          "unknown filter -> InvalidParameterValue",
                          Filters=[{"Name": "no-such-filter", "Values": ["x"]}])

        # Paging: MaxResults + NextToken, through boto3's own paginator.
        extra = ["i-0a1b2c3d4e5f6%04x" % n for n in range(0xe000, 0xe008)]
        for iid in extra:
            self.hook("POST", "/_double/state", {"add_instance": {
                "id": iid, "subnet": PRIV[1], "private_ip": "10.0.150.%d" % (len(iid) % 200),
                "security_groups": [NODE_SG], "tags": {CLUSTER_TAG: "owned"}}})
        self.hook("POST", "/_double/calls/reset")
        pages = list(ec2.get_paginator("describe_instances").paginate(
            PaginationConfig={"PageSize": 5}))
        ids = [i["InstanceId"] for pg in pages for res in pg["Reservations"]
               for i in res["Instances"]]
        self.eq(len(pages), 3, "paginator pages (12 instances, MaxResults 5)")
        self.eq(len(ids), 12, "paginated instance count")
        self.eq(len(set(ids)), 12, "paginated instances are distinct")
        sent = [c["params"].get("NextToken") is not None
                for c in self.calls("ec2", "DescribeInstances")]
        self.eq(sent, [False, True, True], "NextToken sent on later pages")
        for iid in extra:
            self.hook("POST", "/_double/state", {"instance_id": iid, "action": "delete"})
        self.expect_error(ec2.describe_instances, "InvalidParameterCombination",
                          "InstanceIds with MaxResults", InstanceIds=[I1], MaxResults=5)

    def ec2_network(self):
        ec2 = self.ec2
        r = ec2.describe_vpcs(VpcIds=[VPC])
        vpcs = r["Vpcs"]
        self.eq([v["VpcId"] for v in vpcs], [VPC], "describe_vpcs by id")
        self.eq([a["CidrBlock"] for a in vpcs[0].get("CidrBlockAssociationSet", [])],
                [vpcs[0].get("CidrBlock")], "VPC CIDR association")
        self.expect_error(ec2.describe_vpcs, "InvalidVpcID.NotFound", "missing vpc",
                          VpcIds=["vpc-0000000000000dead"])
        r = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [VPC]}])
        subs = {s["SubnetId"]: s for s in r["Subnets"]}
        self.eq(sorted(subs), sorted(PUB + PRIV), "describe_subnets by vpc-id")
        s1 = subs.get(PUB[0], {})
        self.eq(s1.get("AvailabilityZone"), "us-east-1a", "subnet AZ")
        self.eq(s1.get("AvailabilityZoneId"), "use1-az6", "subnet AZ id")
        self.eq(s1.get("CidrBlock"), "10.0.0.0/20", "subnet CIDR")
        self.eq({t["Key"]: t["Value"] for t in s1.get("Tags", [])}.get(
            "kubernetes.io/role/elb"), "1", "subnet role tag")
        r = ec2.describe_subnets(SubnetIds=[PRIV[2]])
        self.eq([s["SubnetId"] for s in r["Subnets"]], [PRIV[2]], "describe_subnets by id")
        self.expect_error(ec2.describe_subnets, "InvalidSubnetID.NotFound",
                          "missing subnet", SubnetIds=["subnet-0000000000000dead"])

        r = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [VPC]}])
        rts = {t["RouteTableId"]: t for t in r["RouteTables"]}
        self.eq(sorted(rts), [MAIN_RTB, CLUSTER_RTB], "describe_route_tables by vpc-id")
        main = rts.get(MAIN_RTB, {})
        self.check(any(a.get("Main") for a in main.get("Associations", [])),
                   "main route table association")
        self.check(any(rt.get("GatewayId", "").startswith("igw-") and
                       rt.get("DestinationCidrBlock") == "0.0.0.0/0"
                       for rt in main.get("Routes", [])), "igw route in main table")
        self.eq(sorted(a.get("SubnetId") for a in rts.get(CLUSTER_RTB, {}).get(
            "Associations", [])), PRIV, "cluster table subnet associations")
        r = ec2.describe_route_tables(Filters=[{"Name": "tag-key", "Values": [CLUSTER_TAG]}])
        self.eq([t["RouteTableId"] for t in r["RouteTables"]], [CLUSTER_RTB],
                "route table by cluster tag-key")

        r = ec2.describe_availability_zones()
        azs = [(a["ZoneName"], a["ZoneId"], a["ZoneType"], a["State"])
               for a in r["AvailabilityZones"]]
        self.eq(azs, [("us-east-1a", "use1-az6", "availability-zone", "available"),
                      ("us-east-1b", "use1-az1", "availability-zone", "available"),
                      ("us-east-1c", "use1-az2", "availability-zone", "available")],
                "describe_availability_zones")
        r = ec2.describe_availability_zones(ZoneNames=["us-east-1b"])
        self.eq([a["ZoneId"] for a in r["AvailabilityZones"]], ["use1-az1"], "AZ by name")

    def ec2_security_groups(self):
        ec2 = self.ec2
        r = ec2.describe_security_groups(Filters=[
            {"Name": "group-name", "Values": ["kubernetes-node"]},
            {"Name": "vpc-id", "Values": [VPC]}])
        self.eq([g["GroupId"] for g in r["SecurityGroups"]], [NODE_SG],
                "describe_security_groups by group-name + vpc-id")
        g = r["SecurityGroups"][0] if r["SecurityGroups"] else {}
        perms = {p["IpProtocol"]: p for p in g.get("IpPermissions", [])}
        self.eq((perms.get("tcp", {}).get("FromPort"), perms.get("tcp", {}).get("ToPort"),
                 [x["CidrIp"] for x in perms.get("tcp", {}).get("IpRanges", [])]),
                (22, 22, ["10.0.0.0/16"]), "seeded tcp rule")
        self.eq([x["GroupId"] for x in perms.get("-1", {}).get("UserIdGroupPairs", [])],
                [NODE_SG], "seeded group-pair rule")
        self.eq(g.get("IpPermissionsEgress", [{}])[0].get("IpProtocol"), "-1", "default egress")
        r = ec2.describe_security_groups(GroupIds=[NODE_SG])
        self.eq(r["SecurityGroups"][0]["GroupName"], "kubernetes-node", "by GroupId")
        r = ec2.describe_security_groups(Filters=[{"Name": "group-id", "Values": [NODE_SG]}])
        self.eq(len(r["SecurityGroups"]), 1, "group-id filter")
        self.expect_error(ec2.describe_security_groups, "InvalidGroup.NotFound",
                          "missing group id", GroupIds=["sg-0000000000000dead"])

        name = "k8s-elb-afidelity"
        r = ec2.create_security_group(
            GroupName=name, VpcId=VPC,
            Description="Security group for Kubernetes ELB afidelity (default/web)",
            TagSpecifications=[{"ResourceType": "security-group", "Tags": [
                {"Key": CLUSTER_TAG, "Value": "owned"},
                {"Key": "kubernetes.io/service-name", "Value": "default/web"}]}])
        sg = r.get("GroupId", "")
        self.check(re.match(r"^sg-[0-9a-f]{17}$", sg), "create_security_group GroupId", sg)
        self.eq({t["Key"]: t["Value"] for t in r.get("Tags", [])}.get(CLUSTER_TAG), "owned",
                "create_security_group returns tags")
        self.expect_error(ec2.create_security_group, "InvalidGroup.Duplicate",
                          "duplicate group -> InvalidGroup.Duplicate", 400,
                          GroupName=name, Description="x", VpcId=VPC)
        ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80,
             "IpRanges": [{"CidrIp": "0.0.0.0/0"}, {"CidrIp": "10.1.0.0/16"}]},
            {"IpProtocol": "icmp", "FromPort": 3, "ToPort": 4,
             "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
        self.expect_error(ec2.authorize_security_group_ingress, "InvalidPermission.Duplicate",
                          "duplicate rule -> InvalidPermission.Duplicate", GroupId=sg,
                          IpPermissions=[{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80,
                                          "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
        r = ec2.describe_security_groups(GroupIds=[sg])
        perms = r["SecurityGroups"][0]["IpPermissions"]
        tcp = [p for p in perms if p["IpProtocol"] == "tcp"]
        self.eq(sorted(x["CidrIp"] for p in tcp for x in p["IpRanges"]),
                ["0.0.0.0/0", "10.1.0.0/16"], "authorized rules visible")
        # Node SG opened to the LB SG (protocol -1 group pair), as the ELB ensure does.
        ec2.authorize_security_group_ingress(GroupId=NODE_SG, IpPermissions=[
            {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": sg}]}])
        self.expect_error(ec2.delete_security_group, "DependencyViolation",
                          "referenced group -> DependencyViolation", 400, GroupId=sg)
        ec2.revoke_security_group_ingress(GroupId=NODE_SG, IpPermissions=[
            {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": sg}]}])
        # NLB node rules: a described rule round-trips, the cluster's groups are found by
        # tag-key, and a revoke that carries the description removes it.
        nlb_desc = "kubernetes.io/rule/nlb/client=afidelity"
        ec2.authorize_security_group_ingress(GroupId=NODE_SG, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 30080, "ToPort": 30080,
             "IpRanges": [{"CidrIp": "203.0.113.0/24", "Description": nlb_desc}]}])
        r = ec2.describe_security_groups(Filters=[{"Name": "tag-key", "Values": [CLUSTER_TAG]}])
        ids = [g["GroupId"] for g in r["SecurityGroups"]]
        self.check(NODE_SG in ids, "tag-key filter finds the node group", ids)
        g = [x for x in r["SecurityGroups"] if x["GroupId"] == NODE_SG][0]
        self.eq([rg.get("Description") for p in g["IpPermissions"]
                 if p.get("FromPort") == 30080 for rg in p["IpRanges"]], [nlb_desc],
                "rule description round-trips")
        ec2.revoke_security_group_ingress(GroupId=NODE_SG, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 30080, "ToPort": 30080,
             "IpRanges": [{"CidrIp": "203.0.113.0/24", "Description": nlb_desc}]}])
        r = ec2.describe_security_groups(GroupIds=[NODE_SG])
        self.eq([p for p in r["SecurityGroups"][0]["IpPermissions"] if p.get("FromPort") == 30080],
                [], "described rule revoked")
        self.expect_error(ec2.revoke_security_group_ingress, "InvalidPermission.NotFound",
                          "revoke missing rule -> InvalidPermission.NotFound", GroupId=NODE_SG,
                          IpPermissions=[{"IpProtocol": "-1",
                                          "UserIdGroupPairs": [{"GroupId": sg}]}])
        ec2.revoke_security_group_ingress(GroupId=sg, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80,
             "IpRanges": [{"CidrIp": "10.1.0.0/16"}]}])
        r = ec2.describe_security_groups(GroupIds=[sg])
        self.eq(sorted(x["CidrIp"] for p in r["SecurityGroups"][0]["IpPermissions"]
                       if p["IpProtocol"] == "tcp" for x in p["IpRanges"]), ["0.0.0.0/0"],
                "revoke removed one range")
        ec2.delete_security_group(GroupId=sg)
        self.expect_error(ec2.delete_security_group, "InvalidGroup.NotFound",
                          "delete missing group -> InvalidGroup.NotFound", GroupId=sg)

        ec2.create_tags(Resources=[I1, NODE_SG], Tags=[{"Key": "fidelity", "Value": "yes"}])
        r = ec2.describe_instances(Filters=[{"Name": "tag:fidelity", "Values": ["yes"]}])
        self.eq([i["InstanceId"] for res in r["Reservations"] for i in res["Instances"]], [I1],
                "create_tags visible in filters")
        ec2.delete_tags(Resources=[I1, NODE_SG], Tags=[{"Key": "fidelity"}])
        r = ec2.describe_instances(Filters=[{"Name": "tag-key", "Values": ["fidelity"]}])
        self.eq(r["Reservations"], [], "delete_tags removed the tag")
        self.expect_error(ec2.create_tags, "InvalidInstanceID.NotFound", "create_tags on a "
                          "missing instance", Resources=["i-0123456789abcdef0"],
                          Tags=[{"Key": "a", "Value": "b"}])

    def ec2_routes(self):
        ec2 = self.ec2
        tmp = "i-0a1b2c3d4e5f6ffff"
        self.hook("POST", "/_double/state", {"add_instance": {
            "id": tmp, "subnet": PRIV[0], "private_ip": "10.0.130.5",
            "security_groups": [NODE_SG], "tags": {CLUSTER_TAG: "owned"}}})
        ec2.modify_instance_attribute(InstanceId=I1, SourceDestCheck={"Value": False})
        r = ec2.describe_instances(InstanceIds=[I1])
        self.eq(r["Reservations"][0]["Instances"][0].get("SourceDestCheck"), False,
                "modify_instance_attribute SourceDestCheck")
        ec2.create_route(RouteTableId=CLUSTER_RTB, DestinationCidrBlock="10.244.1.0/24",
                         InstanceId=I1)
        ec2.create_route(RouteTableId=CLUSTER_RTB, DestinationCidrBlock="10.244.2.0/24",
                         InstanceId=tmp)
        self.expect_error(ec2.create_route, "RouteAlreadyExists", "duplicate route",
                          RouteTableId=CLUSTER_RTB, DestinationCidrBlock="10.244.1.0/24",
                          InstanceId=I2)

        def routes():
            t = ec2.describe_route_tables(RouteTableIds=[CLUSTER_RTB])["RouteTables"][0]
            return {rt["DestinationCidrBlock"]: rt for rt in t["Routes"]}

        rs = routes()
        self.eq((rs.get("10.244.1.0/24", {}).get("InstanceId"),
                 rs.get("10.244.1.0/24", {}).get("State")), (I1, "active"), "route created")
        self.hook("POST", "/_double/state", {"instance_id": tmp, "state": "terminated"})
        rs = routes()
        self.eq(rs.get("10.244.2.0/24", {}).get("State"), "blackhole",
                "route to terminated instance is blackhole")
        r = ec2.describe_instances(InstanceIds=[tmp])
        ti = r["Reservations"][0]["Instances"][0]
        self.eq(ti["State"], {"Code": 48, "Name": "terminated"}, "terminated state")
        self.check("PrivateIpAddress" not in ti, "terminated instance has no private IP")
        ec2.replace_route(RouteTableId=CLUSTER_RTB, DestinationCidrBlock="10.244.2.0/24",
                          InstanceId=I2)
        rs = routes()
        self.eq((rs.get("10.244.2.0/24", {}).get("InstanceId"),
                 rs.get("10.244.2.0/24", {}).get("State")), (I2, "active"), "replace_route")
        ec2.delete_route(RouteTableId=CLUSTER_RTB, DestinationCidrBlock="10.244.1.0/24")
        ec2.delete_route(RouteTableId=CLUSTER_RTB, DestinationCidrBlock="10.244.2.0/24")
        self.check("10.244.1.0/24" not in routes(), "delete_route")
        self.expect_error(ec2.delete_route, "InvalidRoute.NotFound", "delete missing route",
                          RouteTableId=CLUSTER_RTB, DestinationCidrBlock="10.244.1.0/24")
        self.expect_error(ec2.create_route, "InvalidRouteTableID.NotFound", "missing table",
                          RouteTableId="rtb-0000000000000dead",
                          DestinationCidrBlock="10.244.9.0/24", InstanceId=I1)
        ec2.modify_instance_attribute(InstanceId=I1, SourceDestCheck={"Value": True})
        self.hook("POST", "/_double/state", {"instance_id": tmp, "action": "delete"})

    # -- Classic ELB
    def elb_classic(self):
        ec2, elb = self.ec2, self.elb
        lbn = "afidelityclassic0123456789abcdef"
        sg = ec2.create_security_group(GroupName="k8s-elb-" + lbn, Description="elb",
                                       VpcId=VPC)["GroupId"]
        r = elb.create_load_balancer(
            LoadBalancerName=lbn,
            Listeners=[{"Protocol": "TCP", "LoadBalancerPort": 80, "InstanceProtocol": "TCP",
                        "InstancePort": 30080}],
            Subnets=PUB[:2], SecurityGroups=[sg],
            Tags=[{"Key": CLUSTER_TAG, "Value": "owned"},
                  {"Key": "kubernetes.io/service-name", "Value": "default/web"}])
        dns = r.get("DNSName", "")
        self.check(re.match(r"^%s-\d+\.us-east-1\.elb\.amazonaws\.com$" % lbn, dns),
                   "classic create_load_balancer DNSName", dns)
        r2 = elb.create_load_balancer(
            LoadBalancerName="afidelityinternal", Scheme="internal", Subnets=PRIV,
            Listeners=[{"Protocol": "TCP", "LoadBalancerPort": 443, "InstancePort": 30443}])
        self.check(r2.get("DNSName", "").startswith("internal-afidelityinternal-"),
                   "internal classic DNSName", r2.get("DNSName"))
        elb.delete_load_balancer(LoadBalancerName="afidelityinternal")
        elb.delete_load_balancer(LoadBalancerName="afidelityinternal")  # idempotent

        d = elb.describe_load_balancers(LoadBalancerNames=[lbn])["LoadBalancerDescriptions"]
        self.eq(len(d), 1, "classic describe_load_balancers by name")
        d = d[0] if d else {}
        self.eq(d.get("DNSName"), dns, "describe DNSName")
        self.eq([(x["Listener"]["Protocol"], x["Listener"]["LoadBalancerPort"],
                  x["Listener"]["InstancePort"]) for x in d.get("ListenerDescriptions", [])],
                [("TCP", 80, 30080)], "ListenerDescriptions")
        self.eq(d.get("Subnets"), PUB[:2], "classic Subnets")
        self.eq(d.get("AvailabilityZones"), ["us-east-1a", "us-east-1b"], "classic AZs")
        self.eq(d.get("SecurityGroups"), [sg], "classic SecurityGroups")
        self.eq(d.get("VPCId"), VPC, "classic VPCId")
        self.eq(d.get("Scheme"), "internet-facing", "classic Scheme")
        self.eq(d.get("HealthCheck", {}).get("Target"), "TCP:30080", "default health check")
        self.expect_error(elb.describe_load_balancers, "LoadBalancerNotFound",
                          "classic LoadBalancerNotFound", 400,
                          LoadBalancerNames=["doesnotexist"])

        elb.create_load_balancer_listeners(LoadBalancerName=lbn, Listeners=[
            {"Protocol": "SSL", "LoadBalancerPort": 443, "InstanceProtocol": "TCP",
             "InstancePort": 30443,
             "SSLCertificateId": "arn:aws:acm:us-east-1:123456789012:certificate/abc"},
            {"Protocol": "TCP", "LoadBalancerPort": 8080, "InstancePort": 30808}])
        elb.delete_load_balancer_listeners(LoadBalancerName=lbn, LoadBalancerPorts=[8080])
        d = elb.describe_load_balancers(LoadBalancerNames=[lbn])["LoadBalancerDescriptions"][0]
        self.eq(sorted(x["Listener"]["LoadBalancerPort"] for x in d["ListenerDescriptions"]),
                [80, 443], "create/delete listeners")
        self.expect_error(elb.create_load_balancer_listeners, "DuplicateListener",
                          "conflicting listener", LoadBalancerName=lbn, Listeners=[
                              {"Protocol": "TCP", "LoadBalancerPort": 80,
                               "InstancePort": 31111}])

        r = elb.register_instances_with_load_balancer(
            LoadBalancerName=lbn, Instances=[{"InstanceId": I1}, {"InstanceId": I2}])
        self.eq(sorted(i["InstanceId"] for i in r["Instances"]), [I1, I2], "register instances")
        r = elb.deregister_instances_from_load_balancer(LoadBalancerName=lbn,
                                                         Instances=[{"InstanceId": I2}])
        self.eq([i["InstanceId"] for i in r["Instances"]], [I1], "deregister instances")
        self.expect_error(elb.register_instances_with_load_balancer, "InvalidInstance",
                          "register missing instance", LoadBalancerName=lbn,
                          Instances=[{"InstanceId": "i-0123456789abcdef0"}])

        hc = {"Target": "HTTP:32000/healthz", "Interval": 10, "Timeout": 5,
              "UnhealthyThreshold": 6, "HealthyThreshold": 2}
        r = elb.configure_health_check(LoadBalancerName=lbn, HealthCheck=hc)
        self.eq(r.get("HealthCheck"), hc, "configure_health_check")

        a = elb.describe_load_balancer_attributes(LoadBalancerName=lbn)["LoadBalancerAttributes"]
        self.eq(a.get("ConnectionSettings", {}).get("IdleTimeout"), 60, "default idle timeout")
        self.eq(a.get("CrossZoneLoadBalancing", {}).get("Enabled"), False, "default cross-zone")
        r = elb.modify_load_balancer_attributes(LoadBalancerName=lbn, LoadBalancerAttributes={
            "CrossZoneLoadBalancing": {"Enabled": True},
            "ConnectionDraining": {"Enabled": True, "Timeout": 120},
            "ConnectionSettings": {"IdleTimeout": 300}})
        self.eq(r.get("LoadBalancerName"), lbn, "modify attributes answer")
        a = elb.describe_load_balancer_attributes(LoadBalancerName=lbn)["LoadBalancerAttributes"]
        self.eq((a["CrossZoneLoadBalancing"]["Enabled"], a["ConnectionDraining"],
                 a["ConnectionSettings"]["IdleTimeout"]),
                (True, {"Enabled": True, "Timeout": 120}, 300), "attributes modified")

        sg2 = ec2.create_security_group(GroupName="k8s-elb-extra-fidelity", Description="x",
                                        VpcId=VPC)["GroupId"]
        r = elb.apply_security_groups_to_load_balancer(LoadBalancerName=lbn,
                                                       SecurityGroups=[sg, sg2])
        self.eq(r.get("SecurityGroups"), [sg, sg2], "apply_security_groups")
        r = elb.attach_load_balancer_to_subnets(LoadBalancerName=lbn, Subnets=[PUB[2]])
        self.eq(r.get("Subnets"), PUB, "attach subnets")
        r = elb.detach_load_balancer_from_subnets(LoadBalancerName=lbn, Subnets=[PUB[2]])
        self.eq(r.get("Subnets"), PUB[:2], "detach subnets")

        elb.add_tags(LoadBalancerNames=[lbn], Tags=[{"Key": "extra", "Value": "1"},
                                                    {"Key": "drop", "Value": "me"}])
        elb.remove_tags(LoadBalancerNames=[lbn], Tags=[{"Key": "drop"}])
        r = elb.describe_tags(LoadBalancerNames=[lbn])["TagDescriptions"]
        self.eq({t["Key"]: t["Value"] for t in r[0]["Tags"]},
                {CLUSTER_TAG: "owned", "kubernetes.io/service-name": "default/web",
                 "extra": "1"}, "classic add/remove/describe tags")

        elb.create_load_balancer_policy(
            LoadBalancerName=lbn, PolicyName="k8s-proxyprotocol-enabled",
            PolicyTypeName="ProxyProtocolPolicyType",
            PolicyAttributes=[{"AttributeName": "ProxyProtocol", "AttributeValue": "true"}])
        elb.set_load_balancer_policies_for_backend_server(
            LoadBalancerName=lbn, InstancePort=30080, PolicyNames=["k8s-proxyprotocol-enabled"])
        elb.create_load_balancer_policy(
            LoadBalancerName=lbn, PolicyName="k8s-SSLNegotiationPolicy-ELBSecurityPolicy-2016-08",
            PolicyTypeName="SSLNegotiationPolicyType",
            PolicyAttributes=[{"AttributeName": "Reference-Security-Policy",
                               "AttributeValue": "ELBSecurityPolicy-2016-08"}])
        elb.set_load_balancer_policies_of_listener(
            LoadBalancerName=lbn, LoadBalancerPort=443,
            PolicyNames=["k8s-SSLNegotiationPolicy-ELBSecurityPolicy-2016-08"])
        r = elb.describe_load_balancer_policies(
            LoadBalancerName=lbn, PolicyNames=["k8s-proxyprotocol-enabled"])
        pd = r["PolicyDescriptions"][0]
        self.eq((pd["PolicyTypeName"], pd["PolicyAttributeDescriptions"]),
                ("ProxyProtocolPolicyType",
                 [{"AttributeName": "ProxyProtocol", "AttributeValue": "true"}]),
                "describe_load_balancer_policies")
        self.expect_error(elb.describe_load_balancer_policies, "PolicyNotFound",
                          "missing policy -> PolicyNotFound", 400, LoadBalancerName=lbn,
                          PolicyNames=["k8s-SSLNegotiationPolicy-nope"])
        self.expect_error(elb.create_load_balancer_policy, "DuplicatePolicyName",
                          "duplicate policy", LoadBalancerName=lbn,
                          PolicyName="k8s-proxyprotocol-enabled",
                          PolicyTypeName="ProxyProtocolPolicyType")
        d = elb.describe_load_balancers(LoadBalancerNames=[lbn])["LoadBalancerDescriptions"][0]
        self.eq(d.get("BackendServerDescriptions"),
                [{"InstancePort": 30080, "PolicyNames": ["k8s-proxyprotocol-enabled"]}],
                "BackendServerDescriptions")
        ssl = [x for x in d["ListenerDescriptions"] if x["Listener"]["LoadBalancerPort"] == 443]
        self.eq(ssl[0]["PolicyNames"] if ssl else None,
                ["k8s-SSLNegotiationPolicy-ELBSecurityPolicy-2016-08"], "listener PolicyNames")
        elb.set_load_balancer_policies_for_backend_server(LoadBalancerName=lbn,
                                                          InstancePort=30080, PolicyNames=[])
        d = elb.describe_load_balancers(LoadBalancerNames=[lbn])["LoadBalancerDescriptions"][0]
        self.eq(d.get("BackendServerDescriptions"), [], "empty PolicyNames clears backend")

        self.expect_error(ec2.delete_security_group, "DependencyViolation",
                          "SG in use by ELB -> DependencyViolation", GroupId=sg)
        elb.delete_load_balancer(LoadBalancerName=lbn)
        self.expect_error(elb.describe_load_balancers, "LoadBalancerNotFound",
                          "deleted classic ELB is gone", LoadBalancerNames=[lbn])
        ec2.delete_security_group(GroupId=sg)
        ec2.delete_security_group(GroupId=sg2)

    # -- ELBv2
    def elb_v2(self):
        ec2, v2 = self.ec2, self.elbv2
        name = "afidelitynlb0123456789abcdef012"
        r = v2.create_load_balancer(
            Name=name, Type="network", Scheme="internet-facing",
            SubnetMappings=[{"SubnetId": s} for s in PUB],
            Tags=[{"Key": CLUSTER_TAG, "Value": "owned"},
                  {"Key": "kubernetes.io/service-name", "Value": "default/nlb"}])
        lb = r["LoadBalancers"][0]
        arn = lb["LoadBalancerArn"]
        self.check(re.match(r"^arn:aws:elasticloadbalancing:us-east-1:123456789012:"
                            r"loadbalancer/net/%s/[0-9a-f]{16}$" % name, arn), "NLB ARN", arn)
        self.check(lb["DNSName"].endswith(".elb.us-east-1.amazonaws.com") and
                   lb["DNSName"].startswith(name + "-"), "NLB DNSName", lb["DNSName"])
        self.eq((lb["Type"], lb["Scheme"], lb["VpcId"]), ("network", "internet-facing", VPC),
                "NLB Type/Scheme/VpcId")
        self.check(lb["State"]["Code"] in ("provisioning", "active"), "NLB State")
        self.eq([z["SubnetId"] for z in lb["AvailabilityZones"]], PUB, "NLB subnets")
        r = v2.create_load_balancer(Name=name, Type="network",
                                    SubnetMappings=[{"SubnetId": s} for s in PUB])
        self.eq(r["LoadBalancers"][0]["LoadBalancerArn"], arn, "NLB create is idempotent")
        d = v2.describe_load_balancers(Names=[name])["LoadBalancers"]
        self.eq([(x["LoadBalancerArn"], x["State"]["Code"]) for x in d], [(arn, "active")],
                "describe_load_balancers by Names")
        d = v2.describe_load_balancers(LoadBalancerArns=[arn])["LoadBalancers"]
        self.eq(len(d), 1, "describe_load_balancers by ARN")
        self.expect_error(v2.describe_load_balancers, "LoadBalancerNotFound",
                          "ELBv2 LoadBalancerNotFound", 400, Names=["doesnotexist"])

        tgname = "k8s-default-nlb-0123456789"
        r = v2.create_target_group(Name=tgname, Protocol="TCP", Port=30080, VpcId=VPC,
                                   TargetType="instance", HealthCheckProtocol="TCP",
                                   HealthCheckPort="traffic-port",
                                   HealthCheckIntervalSeconds=30, HealthCheckTimeoutSeconds=10,
                                   HealthyThresholdCount=3, UnhealthyThresholdCount=3,
                                   Tags=[{"Key": CLUSTER_TAG, "Value": "owned"}])
        tg = r["TargetGroups"][0]
        tga = tg["TargetGroupArn"]
        self.check(re.match(r"^arn:aws:elasticloadbalancing:us-east-1:123456789012:"
                            r"targetgroup/%s/[0-9a-f]{16}$" % tgname, tga), "TG ARN", tga)
        self.eq((tg["Protocol"], tg["Port"], tg["HealthCheckProtocol"], tg["HealthCheckPort"],
                 tg["HealthyThresholdCount"], tg["TargetType"]),
                ("TCP", 30080, "TCP", "traffic-port", 3, "instance"), "TG fields")
        v2.register_targets(TargetGroupArn=tga, Targets=[{"Id": I1, "Port": 30080},
                                                         {"Id": I2, "Port": 30080}])
        th = v2.describe_target_health(TargetGroupArn=tga)["TargetHealthDescriptions"]
        self.eq(sorted((t["Target"]["Id"], t["TargetHealth"]["State"],
                        t["TargetHealth"].get("Reason")) for t in th),
                [(I1, "unused", "Target.NotInUse"), (I2, "unused", "Target.NotInUse")],
                "target health before a listener")
        self.expect_error(v2.register_targets, "InvalidTarget", "stopped instance target",
                          TargetGroupArn=tga, Targets=[{"Id": I4}])
        r = v2.create_listener(LoadBalancerArn=arn, Protocol="TCP", Port=80,
                               DefaultActions=[{"Type": "forward", "TargetGroupArn": tga}])
        li = r["Listeners"][0]
        la = li["ListenerArn"]
        self.check(re.match(r"^arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/net/"
                            r"%s/[0-9a-f]{16}/[0-9a-f]{16}$" % name, la), "listener ARN", la)
        self.eq((li["Port"], li["Protocol"], li["DefaultActions"][0]["TargetGroupArn"]),
                (80, "TCP", tga), "create_listener")
        self.expect_error(v2.create_listener, "DuplicateListener", "duplicate listener port",
                          LoadBalancerArn=arn, Protocol="UDP", Port=80,
                          DefaultActions=[{"Type": "forward", "TargetGroupArn": tga}])
        th = v2.describe_target_health(TargetGroupArn=tga)["TargetHealthDescriptions"]
        self.eq(sorted((t["Target"]["Id"], t["Target"]["Port"], t["TargetHealth"]["State"])
                       for t in th), [(I1, 30080, "healthy"), (I2, 30080, "healthy")],
                "describe_target_health")
        self.hook("POST", "/_double/state", {"target_health": {
            "target_group_arn": tga, "id": I2, "state": "unhealthy",
            "reason": "Target.FailedHealthChecks", "description": "Health checks failed"}})
        th = v2.describe_target_health(TargetGroupArn=tga, Targets=[{"Id": I2, "Port": 30080}])
        self.eq([t["TargetHealth"]["State"] for t in th["TargetHealthDescriptions"]],
                ["unhealthy"], "target health override")

        d = v2.describe_listeners(LoadBalancerArn=arn)["Listeners"]
        self.eq([x["ListenerArn"] for x in d], [la], "describe_listeners by LB")
        d = v2.describe_target_groups(LoadBalancerArn=arn)["TargetGroups"]
        self.eq([(x["TargetGroupArn"], x["LoadBalancerArns"]) for x in d], [(tga, [arn])],
                "describe_target_groups by LoadBalancerArn")
        d = v2.describe_target_groups(Names=[tgname])["TargetGroups"]
        self.eq([x["TargetGroupArn"] for x in d], [tga], "describe_target_groups by Names")
        d = v2.describe_target_groups(TargetGroupArns=[tga])["TargetGroups"]
        self.eq(len(d), 1, "describe_target_groups by ARN")
        self.expect_error(v2.describe_target_groups, "TargetGroupNotFound",
                          "TargetGroupNotFound", 400, Names=["k8s-nope"])
        self.expect_error(v2.delete_target_group, "ResourceInUse",
                          "delete TG in use -> ResourceInUse", 400, TargetGroupArn=tga)

        r = v2.modify_target_group(TargetGroupArn=tga, HealthCheckProtocol="HTTP",
                                   HealthCheckPort="32000", HealthCheckPath="/healthz",
                                   HealthCheckIntervalSeconds=10, HealthyThresholdCount=2,
                                   UnhealthyThresholdCount=2)
        t = r["TargetGroups"][0]
        self.eq((t["HealthCheckProtocol"], t["HealthCheckPort"], t["HealthCheckPath"],
                 t["HealthCheckIntervalSeconds"], t["HealthyThresholdCount"]),
                ("HTTP", "32000", "/healthz", 10, 2), "modify_target_group")

        # Replace the TG behind the listener: new TG, ModifyListener, delete the old one.
        tg2 = v2.create_target_group(Name=tgname[:-1] + "x", Protocol="TCP", Port=30081,
                                     VpcId=VPC)["TargetGroups"][0]["TargetGroupArn"]
        r = v2.modify_listener(ListenerArn=la, Port=81, Protocol="TCP",
                               DefaultActions=[{"Type": "forward", "TargetGroupArn": tg2}])
        self.eq((r["Listeners"][0]["Port"], r["Listeners"][0]["DefaultActions"][0][
            "TargetGroupArn"]), (81, tg2), "modify_listener")
        v2.deregister_targets(TargetGroupArn=tga, Targets=[{"Id": I1, "Port": 30080},
                                                           {"Id": I2, "Port": 30080}])
        th = v2.describe_target_health(TargetGroupArn=tga)["TargetHealthDescriptions"]
        self.eq(th, [], "deregister_targets")
        v2.delete_target_group(TargetGroupArn=tga)
        self.expect_error(v2.describe_target_groups, "TargetGroupNotFound", "deleted TG gone",
                          TargetGroupArns=[tga])

        a = {x["Key"]: x["Value"] for x in
             v2.describe_load_balancer_attributes(LoadBalancerArn=arn)["Attributes"]}
        self.eq(a.get("load_balancing.cross_zone.enabled"), "false", "default NLB cross-zone")
        r = v2.modify_load_balancer_attributes(LoadBalancerArn=arn, Attributes=[
            {"Key": "load_balancing.cross_zone.enabled", "Value": "true"}])
        self.eq({x["Key"]: x["Value"] for x in r["Attributes"]}.get(
            "load_balancing.cross_zone.enabled"), "true", "modify_load_balancer_attributes")
        self.expect_error(v2.modify_load_balancer_attributes, "InvalidConfigurationRequest",
                          "unknown LB attribute", LoadBalancerArn=arn,
                          Attributes=[{"Key": "no.such", "Value": "1"}])
        a = {x["Key"]: x["Value"] for x in
             v2.describe_target_group_attributes(TargetGroupArn=tg2)["Attributes"]}
        self.eq(a.get("preserve_client_ip.enabled"), "true", "default TG attributes")
        r = v2.modify_target_group_attributes(TargetGroupArn=tg2, Attributes=[
            {"Key": "proxy_protocol_v2.enabled", "Value": "true"}])
        self.eq({x["Key"]: x["Value"] for x in r["Attributes"]}.get(
            "proxy_protocol_v2.enabled"), "true", "modify_target_group_attributes")

        v2.add_tags(ResourceArns=[arn, tg2], Tags=[{"Key": "extra", "Value": "1"},
                                                  {"Key": "drop", "Value": "1"}])
        v2.remove_tags(ResourceArns=[arn, tg2], TagKeys=["drop"])
        r = v2.describe_tags(ResourceArns=[arn, tg2])["TagDescriptions"]
        self.eq([(x["ResourceArn"], sorted(t["Key"] for t in x["Tags"])) for x in r],
                [(arn, sorted([CLUSTER_TAG, "kubernetes.io/service-name", "extra"])),
                 (tg2, ["extra"])], "ELBv2 add/remove/describe tags")
        self.expect_error(v2.describe_tags, "LoadBalancerNotFound", "tags of a missing LB",
                          ResourceArns=[arn[:-16] + "0" * 16])

        self.expect_error(v2.set_security_groups, "InvalidConfigurationRequest",
                          "SetSecurityGroups on an NLB created without SGs",
                          LoadBalancerArn=arn, SecurityGroups=[NODE_SG])
        sga = ec2.create_security_group(GroupName="k8s-default-nlbsg-0123456789",
                                        Description="nlb", VpcId=VPC)["GroupId"]
        sgb = ec2.create_security_group(GroupName="k8s-default-nlbsg-abcdef0123",
                                        Description="nlb", VpcId=VPC)["GroupId"]
        r = v2.create_load_balancer(Name="afidelitynlbsg", Type="network", Scheme="internal",
                                    Subnets=PRIV, SecurityGroups=[sga])
        arn2 = r["LoadBalancers"][0]["LoadBalancerArn"]
        self.eq(r["LoadBalancers"][0].get("SecurityGroups"), [sga], "NLB with SGs")
        r = v2.set_security_groups(LoadBalancerArn=arn2, SecurityGroups=[sgb])
        self.eq(r.get("SecurityGroupIds"), [sgb], "set_security_groups")
        self.expect_error(ec2.delete_security_group, "DependencyViolation",
                          "SG in use by NLB -> DependencyViolation", GroupId=sgb)
        ec2.delete_security_group(GroupId=sga)

        v2.delete_listener(ListenerArn=la)
        self.expect_error(v2.delete_listener, "ListenerNotFound", "delete missing listener",
                          ListenerArn=la)
        self.expect_error(v2.describe_listeners, "ListenerNotFound", "describe missing listener",
                          ListenerArns=[la])
        v2.delete_target_group(TargetGroupArn=tg2)
        v2.delete_load_balancer(LoadBalancerArn=arn)
        v2.delete_load_balancer(LoadBalancerArn=arn2)
        v2.delete_load_balancer(LoadBalancerArn=arn)  # documented: succeeds when gone
        self.expect_error(v2.describe_load_balancers, "LoadBalancerNotFound",
                          "deleted NLB is gone", LoadBalancerArns=[arn])
        ec2.delete_security_group(GroupId=sgb)
        st = self.hook("GET", "/_double/state")
        self.eq((st["load_balancers"], st["target_groups"], st["listeners"],
                 st["classic_load_balancers"]), ({}, {}, {}, {}),
                "no load-balancer resources left in the double")

    # -- STS
    def sts(self):
        sts = self.client("sts")
        r = sts.get_caller_identity()
        self.eq((r["Account"], r["Arn"]), ("123456789012",
                                           "arn:aws:iam::123456789012:user/ccm-double"),
                "get_caller_identity")
        r = sts.assume_role(RoleArn="arn:aws:iam::123456789012:role/ccm-control",
                            RoleSessionName="ccm-host", DurationSeconds=900)
        c = r["Credentials"]
        self.check(re.match(r"^ASIA[A-Z0-9]{16}$", c["AccessKeyId"]), "temporary key id")
        self.check(isinstance(c["Expiration"], datetime.datetime), "Expiration is a timestamp")
        self.eq(r["AssumedRoleUser"]["Arn"],
                "arn:aws:sts::123456789012:assumed-role/ccm-control/ccm-host",
                "AssumedRoleUser.Arn")
        tmp = self.client("sts", c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])
        self.eq(tmp.get_caller_identity()["Arn"],
                "arn:aws:sts::123456789012:assumed-role/ccm-control/ccm-host",
                "temporary credentials are accepted")
        e2 = self.client("ec2", c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])
        self.eq(len(e2.describe_availability_zones()["AvailabilityZones"]), 3,
                "EC2 with temporary credentials")
        notok = self.client("sts", c["AccessKeyId"], c["SecretAccessKey"])
        self.expect_error(notok.get_caller_identity, "InvalidClientTokenId",
                          "temporary key without its session token", 403)
        notok = self.client("ec2", c["AccessKeyId"], c["SecretAccessKey"])
        self.expect_error(notok.describe_availability_zones, "AuthFailure",
                          "EC2: temporary key without its session token", 401)

        self.hook("POST", "/_double/calls/reset")
        r = sts.assume_role_with_web_identity(
            RoleArn="arn:aws:iam::123456789012:role/ccm-irsa", RoleSessionName="ccm",
            WebIdentityToken=WEB_TOKEN)
        self.check(r["Credentials"]["AccessKeyId"].startswith("ASIA"), "web identity creds")
        self.eq(r["AssumedRoleUser"]["Arn"],
                "arn:aws:sts::123456789012:assumed-role/ccm-irsa/ccm", "web identity ARN")
        log = self.calls("sts", "AssumeRoleWithWebIdentity")
        self.eq([c.get("access_key") for c in log], [None], "web identity call is unsigned")
        self.expect_error(sts.assume_role_with_web_identity, "InvalidIdentityToken",
                          "bad web identity token", 400,
                          RoleArn="arn:aws:iam::123456789012:role/ccm-irsa",
                          RoleSessionName="ccm", WebIdentityToken="not-a-seeded-token")
        wi = self.client("elbv2", r["Credentials"]["AccessKeyId"],
                         r["Credentials"]["SecretAccessKey"], r["Credentials"]["SessionToken"])
        self.eq(wi.describe_load_balancers()["LoadBalancers"], [],
                "ELBv2 with web-identity credentials")
        second = self.client("sts", "AKIDCCMSECONDARY01",
                             "ccmSecondarySecretKeyForTheDoubleOnly0001")
        self.eq(second.get_caller_identity()["Arn"],
                "arn:aws:iam::123456789012:user/ccm-secondary", "seeded extra credentials")

    # -- authentication failures
    def auth(self):
        bad = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEZ"
        self.expect_error(self.client("ec2", secret=bad).describe_instances, "AuthFailure",
                          "EC2 wrong secret -> 401 AuthFailure", 401)
        self.expect_error(self.client("elb", secret=bad).describe_load_balancers,
                          "SignatureDoesNotMatch", "ELB wrong secret -> 403 "
                          "SignatureDoesNotMatch", 403)
        self.expect_error(self.client("elbv2", secret=bad).describe_load_balancers,
                          "SignatureDoesNotMatch", "ELBv2 wrong secret", 403)
        self.expect_error(self.client("sts", secret=bad).get_caller_identity,
                          "SignatureDoesNotMatch", "STS wrong secret", 403)
        self.expect_error(self.client("elb", akid="AKIDUNKNOWN0000000").describe_load_balancers,
                          "InvalidClientTokenId", "ELB unknown key -> InvalidClientTokenId", 403)
        self.expect_error(self.client("ec2", akid="AKIDUNKNOWN0000000").describe_instances,
                          "AuthFailure", "EC2 unknown key -> AuthFailure", 401)
        log = self.calls("ec2", "DescribeInstances")
        self.eq([(c["status"], c["error"]) for c in log[-2:]],
                [(401, "AuthFailure"), (401, "AuthFailure")], "call log records auth failures")

        # Clock skew: sign 20 minutes in the past with botocore's own signer.
        real = botocore.auth.datetime

        class Past(datetime.datetime):
            @classmethod
            def utcnow(cls):
                return datetime.datetime.utcnow() - datetime.timedelta(minutes=20)

        botocore.auth.datetime = types.SimpleNamespace(datetime=Past,
                                                       timedelta=datetime.timedelta)
        try:
            self.expect_error(self.client("ec2", attempts=1).describe_instances,
                              "RequestExpired", "EC2 skewed clock -> RequestExpired", 400)
            e = self.expect_error(self.client("elb", attempts=1).describe_load_balancers,
                                  "SignatureDoesNotMatch", "ELB skewed clock", 403)
            if e is not None:
                self.check("Signature expired" in e.response["Error"]["Message"],
                           "skew message says Signature expired")
        finally:
            botocore.auth.datetime = real

    # -- retries
    def retries(self):
        ec2, elb, v2 = self.ec2, self.elb, self.elbv2
        sts = self.client("sts")
        cases = [("ec2", "DescribeInstances", lambda: ec2.describe_instances(),
                  "throttle", 503, "RequestLimitExceeded"),
                 ("elb", "DescribeLoadBalancers", lambda: elb.describe_load_balancers(),
                  "throttle", 400, "Throttling"),
                 ("elbv2", "DescribeLoadBalancers", lambda: v2.describe_load_balancers(),
                  "throttle", 400, "Throttling"),
                 ("sts", "GetCallerIdentity", lambda: sts.get_caller_identity(),
                  "throttle", 400, "Throttling"),
                 ("ec2", "DescribeSubnets", lambda: ec2.describe_subnets(),
                  "5xx", 500, "InternalError"),
                 ("elbv2", "DescribeTargetGroups", lambda: v2.describe_target_groups(),
                  "5xx", 503, "ServiceUnavailable")]
        for svc, action, call, kind, status, code in cases:
            self.hook("POST", "/_double/calls/reset")
            self.hook("POST", "/_double/faults", {"service": svc, "action": action,
                                                  "kind": kind, "count": 1, "status": status})
            try:
                r = call()
                self.eq(r["ResponseMetadata"].get("RetryAttempts"), 1,
                        "%s %s %s retried once by boto3" % (svc, action, code))
            except ClientError as e:
                self.check(False, "%s %s: boto3 did not retry %s" % (svc, action, code), str(e))
            log = self.calls(svc, action)
            self.eq([(c["status"], c["error"]) for c in log], [(status, code), (200, None)],
                    "%s %s call log shows 2 attempts" % (svc, action))
        # A throttling storm longer than the retry budget surfaces the throttle error.
        self.hook("POST", "/_double/calls/reset")
        self.hook("POST", "/_double/faults", {"service": "ec2", "action": "*",
                                              "kind": "throttle", "count": 5})
        self.expect_error(ec2.describe_instances, "RequestLimitExceeded",
                          "throttle storm surfaces RequestLimitExceeded", 503)
        self.eq(len(self.calls("ec2", "DescribeInstances")), 3,
                "3 attempts with total_max_attempts=3")
        self.hook("DELETE", "/_double/faults")
        self.hook("POST", "/_double/faults", {"service": "*", "action": "*", "kind": "latency",
                                              "latency_ms": 30, "count": 2})
        self.eq(len(ec2.describe_availability_zones()["AvailabilityZones"]), 3,
                "latency fault still answers")
        faults = self.hook("GET", "/_double/faults")["faults"]
        self.eq([f["fired"] for f in faults], [1], "latency fault consumed once")
        self.hook("DELETE", "/_double/faults")

    # -- IMDSv2
    def imds(self):
        def get(path, token=None, method="GET", headers=None):
            h = dict(headers or {})
            if token:
                h["X-aws-ec2-metadata-token"] = token
            r = urllib.request.Request(self.url + path, method=method, headers=h,
                                       data=b"" if method == "PUT" else None)
            try:
                with OPENER.open(r, timeout=60) as resp:
                    return resp.status, resp.read().decode(), dict(resp.headers)
            except urllib.error.HTTPError as e:
                return e.code, e.read().decode(), dict(e.headers)

        st, _, _ = get("/latest/api/token", method="PUT")
        self.eq(st, 400, "IMDS token without TTL header -> 400")
        st, tok, hdr = get("/latest/api/token", method="PUT",
                           headers={"X-aws-ec2-metadata-token-ttl-seconds": "21600"})
        self.eq(st, 200, "IMDS token PUT")
        self.eq(hdr.get("X-aws-ec2-metadata-token-ttl-seconds"), "21600", "IMDS token TTL echo")
        st, _, _ = get("/latest/meta-data/instance-id")
        self.eq(st, 401, "IMDS GET without token -> 401")
        st, _, _ = get("/latest/meta-data/instance-id", token="bogus")
        self.eq(st, 401, "IMDS GET with a bad token -> 401")
        st, body, _ = get("/latest/dynamic/instance-identity/document", tok)
        doc = json.loads(body) if st == 200 else {}
        self.eq((doc.get("instanceId"), doc.get("region"), doc.get("availabilityZone"),
                 doc.get("accountId"), doc.get("privateIp")),
                (I1, REGION, "us-east-1a", "123456789012", "10.0.128.10"), "identity document")
        self.eq(get("/latest/meta-data/instance-id", tok)[1], I1, "IMDS instance-id")
        st, macs, _ = get("/latest/meta-data/network/interfaces/macs/", tok)
        mac = macs.splitlines()[0].rstrip("/") if st == 200 and macs else ""
        self.eq(get("/latest/meta-data/network/interfaces/macs/%s/vpc-id" % mac, tok)[1], VPC,
                "IMDS mac vpc-id")
        st, role, _ = get("/latest/meta-data/iam/security-credentials/", tok)
        self.eq((st, role), (200, "kubernetes-node-role"), "IMDS role name")
        st, body, _ = get("/latest/meta-data/iam/security-credentials/" + role, tok)
        cred = json.loads(body) if st == 200 else {}
        self.eq(cred.get("Code"), "Success", "IMDS role credentials")
        if cred:
            c = self.client("sts", cred["AccessKeyId"], cred["SecretAccessKey"], cred["Token"])
            self.eq(c.get_caller_identity()["Arn"], "arn:aws:sts::123456789012:assumed-role/"
                    "kubernetes-node-role/" + I1, "IMDS credentials are accepted")
        self.eq(get("/latest/meta-data/no-such-key", tok)[0], 404, "IMDS unknown path -> 404")

        # botocore's own instance-metadata credential provider against the double.
        saved = dict(os.environ)
        try:
            os.environ.pop("AWS_EC2_METADATA_DISABLED", None)
            os.environ["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = self.url + "/"
            sess = botocore.session.get_session()
            creds = sess.get_credentials()
            self.eq(getattr(creds, "method", None), "iam-role",
                    "botocore InstanceMetadataProvider finds the role")
            if creds is not None:
                fz = creds.get_frozen_credentials()
                c = self.client("sts", fz.access_key, fz.secret_key, fz.token)
                self.check(":assumed-role/kubernetes-node-role/" in
                           c.get_caller_identity()["Arn"], "botocore IMDS credentials work")
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def hooks(self):
        st = self.hook("GET", "/_double/state")
        self.eq(sorted(st["instances"]), [I1, I2, I3, I4], "GET /_double/state instances")
        self.hook("POST", "/_double/state", {"instance_id": I3, "state": "stopped"})
        r = self.ec2.describe_instances(InstanceIds=[I3])
        self.eq(r["Reservations"][0]["Instances"][0]["State"]["Name"], "stopped",
                "POST /_double/state stops an instance")
        self.hook("POST", "/_double/state", {"instance_id": I3, "action": "start"})

    def run(self):
        self.start()
        try:
            self.ec2 = self.client("ec2")
            self.elb = self.client("elb")
            self.elbv2 = self.client("elbv2")
            for part in (self.ec2_describe, self.ec2_network, self.ec2_security_groups,
                         self.ec2_routes, self.elb_classic, self.elb_v2, self.sts, self.auth,
                         self.retries, self.imds, self.hooks):
                try:
                    part()
                except Exception as e:  # a crash in one part must not hide the others
                    self.failed.append(part.__name__)
                    print("FAIL: %s raised %s: %s" % (part.__name__, type(e).__name__, e),
                          flush=True)
                    traceback.print_exc()
            self.check(self.proc.poll() is None, "double still running")
        finally:
            self.stop()
        errs = self.proc.stderr.read() if self.proc.stderr else ""
        if errs.strip():
            print("double stderr:\n" + errs[-4000:])
        want = {(svc, op) for svc, ops in REQUIRED.items() for op in ops}
        missing = sorted(want - self.succeeded)
        self.check(not missing, "every required operation succeeded through boto3",
                   " ".join("%s:%s" % m for m in missing))
        print("aws double fidelity: %d passed, %d failed; %d/%d required operations succeeded "
              "through boto3" % (self.passed, len(self.failed), len(want) - len(missing),
                                 len(want)))
        return 0 if not self.failed else 1


if __name__ == "__main__":
    sys.exit(Fidelity().run())
