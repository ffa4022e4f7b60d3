"""Templates the template-checking tests share (the emulator's, test_emulator_checks.py, and the relay's report
stage, test_report_stage.py): a web tier as ROS JSON (a dict) and as ROS YAML with short tags, and its Terraform
files. Its parameters: InstanceType with AllowedValues and no Default, ZoneId with neither, VpcName with a Default."""

from __future__ import annotations

import yaml

ROS = {
    "ROSTemplateFormatVersion": "2015-09-01",
    "Description": "a web tier",
    "Metadata": {"ALIYUN::ROS::Interface": {"ParameterGroups": []}},
    "Parameters": {
        "InstanceType": {"Type": "String", "AllowedValues": ["ecs.g7.large", "ecs.c7.large"]},
        "ZoneId": {"Type": "String"},
        "VpcName": {"Type": "String", "Default": "web"},
    },
    "Resources": {
        "Vpc": {"Type": "ALIYUN::ECS::VPC", "Properties": {"CidrBlock": "10.0.0.0/16", "VpcName": {"Ref": "VpcName"}}},
        "VSwitch": {
            "Type": "ALIYUN::ECS::VSwitch",
            "Properties": {"VpcId": {"Ref": "Vpc"}, "ZoneId": {"Ref": "ZoneId"}, "CidrBlock": "10.0.1.0/24"},
        },
        "Server": {
            "Type": "ALIYUN::ECS::Instance",
            "DependsOn": "VSwitch",
            "Properties": {
                "InstanceType": {"Ref": "InstanceType"},
                "VSwitchId": {"Fn::GetAtt": ["VSwitch", "VSwitchId"]},
            },
        },
        "Bucket": {"Type": "ALIYUN::OSS::Bucket", "Properties": {"BucketName": "logs"}},
    },
    "Outputs": {"ServerId": {"Value": {"Ref": "Server"}, "Description": "the server"}},
}
# The same template as YAML, with ROS's short tags for two of its functions.
ROS_YAML = (
    yaml.safe_dump({k: v for k, v in ROS.items() if k != "Resources"}, sort_keys=False)
    + """Resources:
  Vpc:
    Type: ALIYUN::ECS::VPC
    Properties: {CidrBlock: 10.0.0.0/16, VpcName: !Ref VpcName}
  VSwitch:
    Type: ALIYUN::ECS::VSwitch
    Properties: {VpcId: !Ref Vpc, ZoneId: !Ref ZoneId, CidrBlock: 10.0.1.0/24}
  Server:
    Type: ALIYUN::ECS::Instance
    DependsOn: VSwitch
    Properties: {InstanceType: !Ref InstanceType, VSwitchId: !GetAtt VSwitch.VSwitchId}
  Bucket:
    Type: ALIYUN::OSS::Bucket
    Properties: {BucketName: logs}
"""
)
MAIN_TF = """# a web tier
resource "alicloud_vpc" "vpc" {
  vpc_name   = var.vpc_name
  cidr_block = "10.0.0.0/16"
}

resource "alicloud_vswitch" "vsw" {
  vpc_id     = alicloud_vpc.vpc.id
  zone_id    = var.zone_id
  cidr_block = "10.0.1.0/24" /* one zone */
}

resource "alicloud_instance" "server" {
  instance_type = "ecs.g7.large"
  vswitch_id    = alicloud_vswitch.vsw.id
  tags          = { Name = "web-${var.vpc_name}" }
}
"""
VARIABLES_TF = """variable "vpc_name" {
  type    = string
  default = "web"
}

variable "zone_id" {
  type = string
}
"""
